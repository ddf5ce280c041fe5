"""Import TensorFlow without its C++ start-up chatter on a machine with no GPU.

TensorFlow's CUDA stub logs "Could not find cuda drivers" through absl before any log level
applies, straight to file descriptor 2. fastfood's own errors are one line, so that noise
would drown them: the import runs with fd 2 pointed at /dev/null (restored afterwards;
an ImportError still surfaces as a Python exception). FASTFOOD_TF_LOGS=1 keeps the logs.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import tensorflow once, with C++ logging at errors-only and start-up noise dropped."""
    if "tensorflow" in sys.modules or os.environ.get("FASTFOOD_TF_LOGS") == "1":
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
