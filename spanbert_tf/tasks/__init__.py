"""What SpanBERT is trained for, one package each: pretraining (MLM + SBO, §3), squad
(extractive QA, MRQA), classification (GLUE, TACRED), coref (coreference) and ner (nested
named entities). Each holds its reader, model, Trainer task (`task.py`), metrics, export,
keras-hub Task (`preset.py`, where it has one) and `run.py`; a task never imports another."""
