"""Full garbage collections for the test processes, on a background thread.

Destroying a `tf.data` iterator can block for up to a minute in TensorFlow 2.21:
`RootDataset::Iterator::~Iterator` joins the iterator's autotuning thread, which sometimes
misses the cancellation wake-up and sleeps out its optimisation period (up to 60 s). The GIL
is released meanwhile. Test processes make hundreds of iterators that end up in reference
cycles (Trainer <-> tf.function <-> iterator), so Python's automatic full collections met
these waits on the test's own thread: in one `make test` run 8 of them took 12-36 s each,
178 s in all (measured by timing each generation-2 collection with `gc.callbacks`; stacks
taken with gdb during the waits).

`start()` freezes what exists (the imported modules: later full collections need not walk
them again), leaves the young generations to Python, turns the automatic full collection
off and runs `gc.collect()` every `period` seconds on a daemon thread instead: an iterator
that waits then keeps that thread waiting while the tests go on. Nothing else is collected
less: the thread collects everything a full collection would, and `stop()` ends with one
more. `SPANBERT_TEST_BACKGROUND_GC=0` keeps Python's own schedule.
"""

import gc
import os
import threading
import time

# The generation-2 threshold counts generation-1 collections; this many never comes.
_NEVER = 1 << 30
PERIOD = 20.0  # seconds between full collections

_state = {"thread": None, "stop": None, "threshold": None, "collections": 0, "seconds": 0.0}


def enabled():
    return os.environ.get("SPANBERT_TEST_BACKGROUND_GC", "1") != "0"


def start(period=PERIOD, freeze=True):
    """Full collections every `period` seconds on a daemon thread; returns the thread."""
    if _state["thread"] is not None:
        return _state["thread"]
    if freeze:
        gc.collect()
        gc.freeze()
    _state["threshold"] = gc.get_threshold()
    young, middle, _ = _state["threshold"]
    gc.set_threshold(young, middle, _NEVER)
    stop = threading.Event()

    def collect_periodically():
        while not stop.wait(period):
            t0 = time.perf_counter()
            gc.collect()
            _state["collections"] += 1
            _state["seconds"] += time.perf_counter() - t0

    thread = threading.Thread(target=collect_periodically, name="background-gc", daemon=True)
    _state.update(thread=thread, stop=stop)
    thread.start()
    return thread


def stop():
    """Ends the thread, restores Python's thresholds, collects once more. Returns
    (collections made on the thread, seconds they took)."""
    thread = _state["thread"]
    if thread is None:
        return 0, 0.0
    _state["stop"].set()
    thread.join()
    gc.set_threshold(*_state["threshold"])
    _state.update(thread=None, stop=None)
    gc.collect()
    return _state["collections"], _state["seconds"]
