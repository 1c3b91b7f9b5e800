"""`python build_vocab.py ...` from a clone. The program is spanbert_tf/programs/build_vocab.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.build_vocab import run

if __name__ == "__main__":
    run()
