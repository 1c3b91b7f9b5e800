#!/usr/bin/env bash
# The GPU run on a fresh JAX machine without TensorFlow, in one command (bench/gpu_run.py):
#   bash bench/gpu_run.sh [--blocks=DIR] [gpu_run.py flags, e.g. --dry_run]
# What it needs is prepared here by `bash bench/gpu_run.sh --prepare` (on a machine with
# TensorFlow): gpu_carry/wheels (keras, keras-hub and their TF-free dependencies) and
# gpu_carry/blocks (the demo corpus as .npy blocks, seq 128); carry gpu_carry/ along (33-50 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${GPU_CARRY:-gpu_carry}
if [[ "${1:-}" == "--prepare" ]]; then
  mkdir -p "$CARRY/wheels"
  python -m pip download -q -d "$CARRY/wheels" -r requirements-notf.txt
  python -m pip download -q --no-deps -d "$CARRY/wheels" "keras-hub>=0.32,<0.33"
  python create_pretraining_data.py --masking=none --output_format=npy --max_seq_length=128 \
    --max_predictions_per_seq=20 --output_dir="$CARRY/blocks" --progress=false
  du -sh "$CARRY"
  exit 0
fi
if ! python -c "import keras, keras_hub" 2>/dev/null; then
  # requirements-notf.txt with its dependencies, then keras-hub alone (its metadata wants
  # tensorflow-text): docs/pretraining.md, "Without TensorFlow".
  python -m pip install -q --no-index --find-links "$CARRY/wheels" -r requirements-notf.txt
  python -m pip install -q --no-index --no-deps "$CARRY"/wheels/keras_hub-*.whl
fi
export KERAS_BACKEND=jax PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
blocks=()
[[ " $* " == *" --blocks="* ]] || blocks=(--blocks="$CARRY/blocks")
exec python bench/gpu_run.py "${blocks[@]}" "$@"
