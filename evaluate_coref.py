"""`python evaluate_coref.py ...` from a clone. The program is spanbert_tf/programs/evaluate_coref.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.evaluate_coref import run

if __name__ == "__main__":
    run()
