"""Import TensorFlow without its C++ start-up chatter on a machine with no GPU.

TensorFlow's CUDA stub logs "Could not find cuda drivers" through absl before any log level
applies, straight to file descriptor 2. fastfood's own errors are one line, so that noise
would drown them: the import runs with fd 2 pointed at /dev/null (restored afterwards;
an ImportError still surfaces as a Python exception). FASTFOOD_TF_LOGS=1 keeps the logs.

Every command imports TensorFlow through here, so this is also where GPU memory growth is
asked for (`fastfood.gpu_memory`): before the import, and on every GPU right after it,
before anything can run an op.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import tensorflow once, with C++ logging at errors-only and start-up noise dropped,
    and GPU memory growth on."""
    from fastfood import gpu_memory

    gpu_memory.request()
    if "tensorflow" in sys.modules or os.environ.get("FASTFOOD_TF_LOGS") == "1":
        gpu_memory.allow_growth()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401

        # Listing devices initialises CUDA (or fails to) now, while the noise is dropped.
        tensorflow.config.list_physical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    gpu_memory.allow_growth()
