"""`python run_ner.py ...` from a clone. The program is spanbert_tf/programs/run_ner.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.run_ner import run

if __name__ == "__main__":
    run()
