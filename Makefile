# Two commands for a fresh machine: `make demo` and `make test`.
# Both create the virtualenv (.venv) and install the project into it when needed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spanbert-installed
DEMO_DIR ?= runs/demo

.PHONY: install test test-fast demo bench clean

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

## End to end on the embedded default data.
demo: $(STAMP)
	$(PY) create_pretraining_data.py --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=2 --output_dir=$(DEMO_DIR)/tfrecords

bench: $(STAMP)
	$(PY) bench/create_pretraining_data.py
	$(PY) bench/pretraining_step.py

clean:
	rm -rf $(VENV) runs build *.egg-info
