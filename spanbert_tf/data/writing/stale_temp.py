"""Temporary files that interrupted runs left in an output dir: reported, removed on request.

`writer.ShardWriter` writes its shards as `.pretrain-SSSSS-of-NNNNN.tfrecord[.gz].tmp-PID`
and the Beam pipeline as `.<name>.tmp-beam-PID-TOKEN` (PID: the launcher's process).
A run ended by `kill -9` (or a crash of the machine) cannot remove them: they are
hidden, can be large, and readers never take them for shards. The next run into the
same dir reports them in one line (`report_line`); with `--remove_stale_temp` it deletes
those whose process is gone (`remove_stale`). A file of a live process (another run
writing there right now) is never removed, nor one whose name holds no PID (the Beam
names of versions before this one).

The PID rule holds on the machine that wrote the file: on a directory shared by several
machines a PID means nothing, so run `--remove_stale_temp` where the killed run ran.

Example:
```python
found = find_stale("tfrecords")          # [StaleTemp(path, size, pid), ...]
print(report_line("tfrecords", found))
removed, kept = remove_stale(found)
```
"""

import dataclasses
import os
import re
import sys

# The temporary names of this package's data writers (local and Beam) for the shards, the
# description files and the Beam pipeline's nothing-to-write marker.
_TARGET = r"(?:pretrain-\d{5}-of-\d{5}\.tfrecord(?:\.gz)?|stats\.json|metadata\.json|nothing-to-write)"
TEMP_NAME = re.compile(
    rf"\.{_TARGET}\.tmp-(?:(?P<pid>\d+)|beam-(?:(?P<beam_pid>\d+)-)?[0-9a-f]+)")


@dataclasses.dataclass
class StaleTemp:
    """One temporary file of an earlier run: its path, size and writer's PID (None: unknown)."""

    path: str
    size: int
    pid: object = None


def pid_of(name):
    """The writer's PID in a temporary file's name; None when the name holds none."""
    match = TEMP_NAME.fullmatch(name)
    if not match:
        return None
    pid = match.group("pid") or match.group("beam_pid")
    return int(pid) if pid else None


def pid_alive(pid):
    """True while process `pid` exists on this machine (also another user's, or a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_stale(output_dir):
    """The temporary files of earlier runs in `output_dir` (local dirs; [] if absent)."""
    if "://" in output_dir or not os.path.isdir(output_dir):
        return []
    found = []
    for name in sorted(os.listdir(output_dir)):
        if TEMP_NAME.fullmatch(name):
            path = os.path.join(output_dir, name)
            try:
                size = os.path.getsize(path)
            except OSError:
                continue  # removed meanwhile
            found.append(StaleTemp(path, size, pid_of(name)))
    return found


def remove_stale(found):
    """Deletes the files whose process is gone; returns (removed, kept) lists of StaleTemp."""
    removed, kept = [], []
    for temp in found:
        if temp.pid is None or temp.pid == os.getpid() or pid_alive(temp.pid):
            kept.append(temp)
            continue
        try:
            os.remove(temp.path)
        except FileNotFoundError:
            pass
        removed.append(temp)
    return removed, kept


def _megabytes(found):
    return f"{sum(t.size for t in found) / 1e6:,.1f} MB"


def report_line(output_dir, found, removed=None, kept=None):
    """One line on the stale files found (and, after `remove_stale`, what was removed)."""
    if removed is None:
        return (f"{len(found)} stale temporary file(s) of interrupted runs in {output_dir}, "
                f"{_megabytes(found)} (e.g. {os.path.basename(found[0].path)}); "
                "--remove_stale_temp deletes those whose process is gone")
    line = (f"removed {len(removed)} stale temporary file(s) of ended runs from {output_dir}, "
            f"{_megabytes(removed)}")
    if kept:
        live = sorted({t.pid for t in kept if t.pid is not None})
        why = (f"of running process(es) {', '.join(map(str, live))}" if live else "") + (
            " or " if live and any(t.pid is None for t in kept) else "") + (
            "without a PID in the name" if any(t.pid is None for t in kept) else "")
        line += f"; kept {len(kept)} ({_megabytes(kept)}) {why}"
    return line


def check_output_dir(output_dir, remove, program="create_pretraining_data", stream=None):
    """At the start of a run: reports (and with `remove` deletes) the stale temporary files
    of `output_dir` in one line on `stream` (stderr); returns the stats.json entry."""
    found = find_stale(output_dir)
    entry = {"found": len(found), "bytes": sum(t.size for t in found), "removed": 0}
    if not found:
        return entry
    removed = kept = None
    if remove:
        removed, kept = remove_stale(found)
        entry["removed"] = len(removed)
    print(f"{program}: {report_line(output_dir, found, removed, kept)}",
          file=stream or sys.stderr, flush=True)
    return entry
