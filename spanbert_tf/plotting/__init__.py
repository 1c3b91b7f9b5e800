"""Pictures of a run: `train_log.png` of a training run, `stats.png` of a data run.

matplotlib is an optional dependency (the `plots` extra, `pip install -e ".[plots]"`): it
is imported only when a picture is drawn, on the Agg backend (no display needed), so no
program pays for it at start-up. Without it the programs print one line saying how to get
it and go on (`plot_or_note`). Pictures are written atomically (temp file + rename).

Example:
```python
from spanbert_tf.plotting import plot_or_note
from spanbert_tf.plotting.train_log_plot import plot_train_log

plot_or_note("run_squad", plot_train_log, "runs/squad")   # the path, or None
```
"""

import sys

from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import atomic_path

INSTALL_HINT = 'pip install -e ".[plots]"'
# A fixed pixel size (no tight bounding box): what the tests check.
DPI = 100
WIDTH_INCHES = 12.0


class MatplotlibMissing(ImportError):
    """matplotlib is not installed: the picture cannot be drawn."""


def pyplot():
    """`matplotlib.pyplot` on the Agg backend; raises `MatplotlibMissing` without it."""
    try:
        import matplotlib
    except ImportError:
        raise MatplotlibMissing(f"matplotlib is not installed (get it with `{INSTALL_HINT}`)"
                                ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, path):
    """Writes `fig` as a PNG to `path` atomically and closes it; returns `path`."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return str(path)


def plot_or_note(program, plot, *args, **kwargs):
    """Runs `plot(*args, **kwargs)` (which returns the picture's path) for a program that
    must go on without it: without matplotlib (or with nothing to draw, an `InputError`)
    prints one line saying why and returns None."""
    try:
        result = plot(*args, **kwargs)
    except MatplotlibMissing:
        print(f"{program}: no plot written: matplotlib is not installed (get it with "
              f"`{INSTALL_HINT}`)", file=sys.stderr, flush=True)
        return None
    except InputError as e:
        print(f"{program}: no plot written: {e}", file=sys.stderr, flush=True)
        return None
    return getattr(result, "path", result)
