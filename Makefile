# Two commands for a fresh machine: `make demo` and `make test`.
# Both create the virtualenv (.venv) and install the project into it when needed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spanbert-installed
DEMO_DIR ?= runs/demo

.PHONY: install test test-fast demo demo-finetune bench clean

$(STAMP): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

## The whole test suite (CI runs exactly this).
test: $(STAMP)
	$(PY) -m pytest -q tests

## Everything but the tests marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

## End to end on the embedded default data: span-masked TFRecords -> pretraining (tiny
## config, 300 steps) -> SavedModels -> fill a masked span through the reloaded exports.
demo: $(STAMP)
	$(PY) create_pretraining_data.py --max_seq_length=128 --max_predictions_per_seq=20 \
		--dupe_factor=2 --output_dir=$(DEMO_DIR)/tfrecords
	$(PY) run_pretraining.py --input_files=$(DEMO_DIR)/tfrecords --model_dir=$(DEMO_DIR)/pretrain
	$(PY) export_saved_model.py --model_dir=$(DEMO_DIR)/pretrain --export_dir=$(DEMO_DIR)/export \
		--overwrite
	$(PY) spanbert_tf/export/demo_fill_span.py --export_dir=$(DEMO_DIR)/export \
		--text="Robert Boulter is an English film , television and theatre actor ." \
		--span="film , television"
	@echo "demo: checkpoint in $(DEMO_DIR)/pretrain, SavedModels in $(DEMO_DIR)/export"

## Fine-tuning demos on the real data in ../shared/data (after `make demo`).
SHARED_DATA ?= ../shared/data
demo-finetune: $(STAMP)
	$(PY) run_classifier.py --task_name=MRPC --data_dir=$(SHARED_DATA)/glue/MRPC \
		--init_checkpoint=$(DEMO_DIR)/pretrain --output_dir=$(DEMO_DIR)/mrpc \
		--do_train --do_eval --num_train_epochs=1 --max_seq_length=64
	$(PY) run_squad.py --init_checkpoint=$(DEMO_DIR)/pretrain --output_dir=$(DEMO_DIR)/squad \
		--do_train --train_file=$(SHARED_DATA)/squad/squad-v2.0-dev-subset_haystack-small.json \
		--train_first_answer --version_2_with_negative \
		--do_predict --predict_file=$(SHARED_DATA)/squad/squad-v2.0-dev-subset_haystack-small.json \
		--max_seq_length=128 --doc_stride=64 --max_query_length=32 --train_batch_size=16 \
		--num_train_epochs=1 --learning_rate=1e-4
	$(PY) evaluate_squad.py --data_file=$(SHARED_DATA)/squad/squad-v2.0-dev-subset_haystack-small.json \
		--pred_file=$(DEMO_DIR)/squad/predictions.json --na_prob_file=$(DEMO_DIR)/squad/null_odds.json

bench: $(STAMP)
	$(PY) bench/create_pretraining_data.py
	$(PY) bench/pretraining_step.py

clean:
	rm -rf $(VENV) runs build *.egg-info
