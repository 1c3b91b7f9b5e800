"""`stats.png`: the masking of a create_pretraining_data.py run against its targets.

Drawn from the run's `stats.json` (`spanbert_tf.data.writing.report`), written beside it and
metadata.json at the end of the run (local and Beam runners), or on demand by
`python -m spanbert_tf.plot DATA_DIR`. Two panels:

* span lengths in words: the share of spans of each length as the masker drew them
  (`drawn_span_length_words_histogram`, span scheme) and after adjacent spans merged
  (`span_length_words_histogram`), against the truncated geometric the masker draws
  from (`masking_target.span_length_words`: p=0.2 clipped to 1..10 by default, computed
  from the run's own masking settings);
* replacement shares of the masked tokens ([MASK] / random / unchanged) against the
  configured ones (80/10/10 by default).

Example:
```python
plot_data_stats("tfrecords").path   # tfrecords/stats.png
```
"""

import dataclasses
import json
import os

import numpy as np

from spanbert_tf import plotting
from spanbert_tf.errors import InputError

STATS_NAME = "stats.json"
PNG_NAME = "stats.png"
HEIGHT_INCHES = 4.0
REPLACEMENTS = (("mask", "[MASK]"), ("random", "random"), ("unchanged", "unchanged"))


@dataclasses.dataclass
class DataStatsPlot:
    """What `plot_data_stats` drew: the PNG's path and the series of each panel."""

    path: str
    series: dict


def _shares(histogram, lengths):
    counts = np.array([float(histogram.get(str(n), 0)) for n in lengths])
    total = counts.sum()
    return counts / total if total else counts


def read_stats(data_dir):
    """The stats.json of a masked data dir; `InputError` naming what is missing."""
    path = os.path.join(str(data_dir), STATS_NAME)
    if not os.path.isfile(path):
        raise InputError(f"{data_dir}: no {STATS_NAME} (not an output dir of "
                         "create_pretraining_data.py)")
    try:
        with open(path, encoding="utf-8") as f:
            stats = json.load(f)
    except ValueError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if stats.get("records") == "unmasked":
        raise InputError(f"{path}: the records are unmasked (--masking=none): no masking "
                         "statistics to plot")
    for key in ("span_length_words_histogram", "replacement_proportions", "masking_target"):
        if key not in stats:
            raise InputError(f"{path}: no {key!r} (written by an older spanbert_tf; rerun "
                             "create_pretraining_data.py)")
    return stats


def plot_data_stats(data_dir, out_path=None):
    """Draws `stats.png` (default: beside `data_dir/stats.json`); returns a `DataStatsPlot`.

    Raises `InputError` for a dir without usable stats.json, `plotting.MatplotlibMissing`
    without matplotlib.
    """
    stats = read_stats(data_dir)
    target = stats["masking_target"]
    merged = stats["span_length_words_histogram"]
    drawn = stats.get("drawn_span_length_words_histogram") or {}
    target_lengths = target.get("span_length_words") or {}
    longest = max([int(k) for k in (*merged, *drawn, *target_lengths) if int(k) > 0] or [1])
    lengths = np.arange(1, longest + 1)

    plt = plotting.pyplot()
    fig, (span_ax, rep_ax) = plt.subplots(
        1, 2, layout="constrained", width_ratios=(2, 1),
        figsize=(plotting.WIDTH_INCHES, HEIGHT_INCHES))
    series = {"span length": [], "replacement": []}
    bars = [(f"merged spans ({stats.get('spans', 0):,})", merged)]
    if drawn:
        bars.insert(0, (f"drawn spans ({sum(drawn.values()):,})", drawn))
    width = 0.8 / len(bars)
    for i, (label, histogram) in enumerate(bars):
        span_ax.bar(lengths + (i - (len(bars) - 1) / 2) * width, _shares(histogram, lengths),
                    width=width, label=label, alpha=0.85)
        series["span length"].append(label)
    if target_lengths:
        label = (f"target: geometric p={target['geometric_p']:g}, "
                 f"1..{target['max_span_length']}")
        target_at = np.array(sorted(int(n) for n in target_lengths))
        span_ax.plot(target_at, [target_lengths[str(n)] for n in target_at],
                     color="black", marker="o", linewidth=1.5, label=label)
        series["span length"].append(label)
    span_ax.set_title(f"span length in words ({target['scheme']} masking)", loc="left")
    span_ax.set_xlabel("span length (words)")
    span_ax.set_ylabel("share of spans")
    span_ax.set_xticks(lengths)
    span_ax.grid(True, axis="y", alpha=0.3)
    span_ax.legend(fontsize="small")

    observed = stats["replacement_proportions"]
    positions = np.arange(len(REPLACEMENTS))
    for offset, label, values in (
            (-0.2, f"observed ({stats.get('masked_tokens', 0):,} masked tokens)",
             [observed.get(k, 0.0) for k, _ in REPLACEMENTS]),
            (0.2, "target", [target["replacement"][k] for k, _ in REPLACEMENTS])):
        drawn_bars = rep_ax.bar(positions + offset, values, width=0.4, label=label)
        rep_ax.bar_label(drawn_bars, fmt="%.3f", fontsize="x-small")
        series["replacement"].append(label)
    rep_ax.set_xticks(positions, [name for _, name in REPLACEMENTS])
    rep_ax.set_ylim(0, 1.05)
    rep_ax.set_title("replacement of masked tokens", loc="left")
    rep_ax.set_ylabel("share of masked tokens")
    rep_ax.grid(True, axis="y", alpha=0.3)
    rep_ax.legend(fontsize="small")
    fig.suptitle(os.path.abspath(str(data_dir)), fontsize="small")
    path = out_path or os.path.join(str(data_dir), PNG_NAME)
    return DataStatsPlot(plotting.save_figure(plt, fig, path), series)
