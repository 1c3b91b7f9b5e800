"""`python create_pretraining_data.py ...` from a clone. The program is spanbert_tf/programs/create_pretraining_data.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.create_pretraining_data import run

if __name__ == "__main__":
    run()
