"""`python run_classifier.py ...` from a clone. The program is spanbert_tf/programs/run_classifier.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.run_classifier import run

if __name__ == "__main__":
    run()
