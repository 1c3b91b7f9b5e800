"""Masking (§3.1): span / whole-word / token masking and the SBO targets (`masker`: numpy, the
reference), the same draws as TensorFlow ops for masking while training (`dynamic_masking`),
the shared random draws (`masking_draws`), the types (`masking_types`), and masks materialised
from unmasked records (`materialize`)."""
