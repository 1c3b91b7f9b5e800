"""What SpanBERT is trained for, one package each: pretraining (MLM + SBO, §3), squad
(extractive QA), classification (GLUE, TACRED) and coref (coreference). Each holds its reader,
model, Trainer task (`task.py` where it has its own), metrics, export and `run.py`."""
