"""The programs (layer 6): thin absl front ends that parse flags and call the library.

Each is installed as a console script and has a shim at the repository root, so that
`python run_squad.py ...` works from a clone. `registry.py` lists every program, these and the
`python -m` ones beside their tasks."""
