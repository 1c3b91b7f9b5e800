"""Every program of the project, in one place (read by setup.py: literals only, no imports).

`ROOT_PROGRAMS`: the absl front ends in `spanbert_tf/programs/` (layer 6): each is a console
script once installed (`spanbert-run-squad ...`) and, from a clone, a root shim
(`python run_squad.py ...`). `MODULE_PROGRAMS`: the programs run as `python -m MODULE` (or as a
file) that live beside their task.
"""

# module in spanbert_tf/programs -> (console script, what it does)
ROOT_PROGRAMS = {
    "build_vocab": ("spanbert-build-vocab",
                    "a WordPiece vocabulary learned from your corpus, with its coverage"),
    "create_pretraining_data": ("spanbert-create-pretraining-data",
                                "span-masked (or unmasked) pretraining TFRecords from text"),
    "materialize_masks": ("spanbert-materialize-masks",
                          "one epoch's dynamic masks written as ordinary masked shards"),
    "run_pretraining": ("spanbert-run-pretraining",
                        "SpanBERT pretraining (MLM + SBO) on TF, JAX or PyTorch"),
    "export_saved_model": ("spanbert-export-saved-model",
                           "SavedModels of a pretrained model for TF Serving"),
    "convert_checkpoint": ("spanbert-convert-checkpoint",
                           "HF / TF1 / keras-hub checkpoints <-> ours"),
    "run_squad": ("spanbert-run-squad", "SQuAD 1.1 / 2.0 fine-tuning and prediction"),
    "evaluate_squad": ("spanbert-evaluate-squad",
                       "the official SQuAD 1.1 / 2.0 and MRQA 2019 evaluations"),
    "run_classifier": ("spanbert-run-classifier", "GLUE and TACRED fine-tuning"),
    "run_coref": ("spanbert-run-coref", "coreference fine-tuning and prediction"),
    "evaluate_coref": ("spanbert-evaluate-coref", "MUC / B3 / CEAF-e coreference scores"),
    "run_ner": ("spanbert-run-ner", "named-entity fine-tuning and prediction (nested spans)"),
    "evaluate_ner": ("spanbert-evaluate-ner", "exact-match entity precision / recall / F1"),
}

# python -m MODULE (beside its task) -> what it does
MODULE_PROGRAMS = {
    "spanbert_tf.tasks.classification.fetch_glue": "fetch GLUE tasks from their official sources",
    "spanbert_tf.tasks.squad.split_articles": "split a SQuAD file by article",
    "spanbert_tf.tasks.coref.stats": "statistics of a CoNLL-2012 coreference corpus",
    "spanbert_tf.tasks.ner.stats": "statistics of a named-entity corpus",
    "spanbert_tf.tasks.coref.demo_clusters": "clusters of a text from a coreference export",
    "spanbert_tf.plot": "train_log.png / stats.png of a model or data dir",
    "spanbert_tf.tasks.pretraining.demo_fill_span": "fill a masked span through the exports "
                                                    "(also run as a file: no package import)",
}
