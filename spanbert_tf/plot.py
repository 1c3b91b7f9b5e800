"""`python -m spanbert_tf.plot MODEL_DIR`: (re)writes MODEL_DIR/train_log.png.

The picture every training program writes at the end of training
(`spanbert_tf.plotting.train_log_plot`), drawn again from the model dir's logs, e.g.
while a run is still going or after it was killed; prints the PNG's path. A dir that is
not the model dir of a training run, or a missing matplotlib, is one line on stderr,
exit 1. Give a data output dir of create_pretraining_data.py (one with stats.json) and it
(re)writes its stats.png instead.

    python -m spanbert_tf.plot runs/pretrain
    python -m spanbert_tf.plot tfrecords
"""

import argparse
import os
import sys

from spanbert_tf import cli, plotting
from spanbert_tf.errors import InputError
from spanbert_tf.plotting import data_stats_plot, train_log_plot

PROGRAM = "spanbert_tf.plot"


def plot_dir(path, out_path=None):
    """Writes the picture of `path` (a model dir, or a data dir with stats.json) to
    `out_path` (default: inside `path`); returns the PNG's path."""
    path = str(path)
    if (os.path.isdir(path) and train_log_plot.find_train_log(path) is None
            and os.path.isfile(os.path.join(path, data_stats_plot.STATS_NAME))):
        return data_stats_plot.plot_data_stats(path, out_path).path
    return train_log_plot.plot_train_log(path, out_path).path


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a training run's model/output dir (or a data "
                        "dir of create_pretraining_data.py)")
    parser.add_argument("--out", default=None,
                        help="where to write the PNG (default: MODEL_DIR/train_log.png, or "
                        "DATA_DIR/stats.png)")
    args = parser.parse_args(argv)
    try:
        path = plot_dir(args.model_dir, args.out)
    except (InputError, plotting.MatplotlibMissing, OSError) as e:
        print(cli.error_line(PROGRAM, e), file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
