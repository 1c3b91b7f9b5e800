"""`python run_squad.py ...` from a clone. The program is spanbert_tf/programs/run_squad.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.run_squad import run

if __name__ == "__main__":
    run()
