"""`python convert_checkpoint.py ...` from a clone. The program is spanbert_tf/programs/convert_checkpoint.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.convert_checkpoint import run

if __name__ == "__main__":
    run()
