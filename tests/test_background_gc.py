"""tests/background_gc.py: full collections run on its thread, and stop() restores Python's."""

import gc
import threading
import time

from tests import background_gc


class _Cycle:
    """Garbage only a full collection finds: a reference cycle that survived into the oldest
    generation. Its finalizer records the thread that collected it."""

    def __init__(self, seen):
        self.me, self.seen = self, seen

    def __del__(self):
        self.seen.append(threading.current_thread().name)


def test_cycles_are_collected_on_the_background_thread_and_thresholds_restored():
    was_running = background_gc._state["thread"] is not None
    background_gc.stop()
    python_thresholds = gc.get_threshold()
    try:
        thread = background_gc.start(period=0.05, freeze=False)
        assert thread.name == "background-gc" and thread.daemon
        assert gc.get_threshold()[:2] == python_thresholds[:2]
        assert gc.get_threshold()[2] > 10 ** 8  # no automatic full collection
        gc.disable()  # nor a young one on this thread, which could find the cycle first
        seen = []
        _Cycle(seen)
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["background-gc"]
        collections, seconds = background_gc.stop()
        assert collections >= 1 and seconds >= 0.0
        assert background_gc._state["thread"] is None and not thread.is_alive()
        assert gc.get_threshold() == python_thresholds
    finally:
        gc.enable()
        background_gc.stop()
        if was_running:
            background_gc.start(freeze=False)
