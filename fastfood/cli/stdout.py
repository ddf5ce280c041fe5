"""Keep stdout for a command's answers: whatever native code prints goes to stderr.

DALI's TensorFlow plugin writes its error report for a file it cannot decode straight to
file descriptor 1, from C++, ahead of any Python-level redirection; TensorFlow and libjpeg
may write there too. A program that reads ``fastfood predict --json`` line by line would
break on such a line. Inside :func:`answers_only`, descriptor 1 points at stderr (and so
does ``sys.stdout``), and the command writes its answers to the stream it is given, which
writes through a saved duplicate of the original stdout.

When ``sys.stdout`` is not descriptor 1 (a test capturing output in-process, say), native
output still goes to stderr, and the answers go to that ``sys.stdout`` object.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def answers_only() -> Iterator[TextIO]:
    """Point stdout (descriptor 1 and ``sys.stdout``) at stderr; yield the real stdout."""
    original = sys.stdout
    original.flush()
    _flush_c_stdio()
    restore_fd = os.dup(1)
    answers: TextIO = original
    if _fileno(original) == 1:
        answers = open(restore_fd, "w", encoding=original.encoding, errors=original.errors,
                       buffering=1, closefd=False)  # line-buffered: each answer goes out at once
    try:
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        yield answers
    finally:
        answers.flush()
        sys.stderr.flush()
        _flush_c_stdio()  # what native code buffered while fd 1 was stderr goes there
        os.dup2(restore_fd, 1)
        if answers is not original:
            answers.close()
        os.close(restore_fd)
        sys.stdout = original


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def _flush_c_stdio() -> None:
    """fflush(NULL): empty the C library's stdio buffers (C++ iostreams share them)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to load (not on Linux/macOS)
        pass
