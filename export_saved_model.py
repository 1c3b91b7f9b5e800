"""`python export_saved_model.py ...` from a clone. The program is spanbert_tf/programs/export_saved_model.py
(installed as a console script, see spanbert_tf/programs/registry.py); `--help` lists its flags."""

from spanbert_tf.programs.export_saved_model import run

if __name__ == "__main__":
    run()
