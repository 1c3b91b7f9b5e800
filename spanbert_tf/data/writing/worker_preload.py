"""Imported once by the forkserver of `create_pretraining_data`'s worker pool.

The pool's workers are forked from a server process that imported TensorFlow (the
lean way, `lean_tf.py`) and the pipeline modules once, before running any op: N
workers then pay one TensorFlow start-up, not N, and share its pages copy-on-write.
Nothing else imports this module.
"""

import signal

from spanbert_tf.data.writing.lean_tf import import_tensorflow_lean

# A Ctrl-C reaches the whole process group: the server (and the workers it forks, which
# ignore it anyway) leave it to the main process, instead of a traceback of this import.
signal.signal(signal.SIGINT, signal.SIG_IGN)
import_tensorflow_lean()

from spanbert_tf import tokenization  # noqa: E402,F401  (imported for the workers)
from spanbert_tf.data.writing import instances
from spanbert_tf.data.masking import masker as masking  # noqa: E402,F401
