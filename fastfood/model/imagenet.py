"""weights='imagenet': keras.applications' own VGG19 file, through Keras's download cache.

The same file name, URL and hash as `keras.applications.vgg19`, in the same cache
(`$KERAS_HOME/models`, default ~/.keras/models), so a machine that ever ran
`keras.applications.VGG19()` already has it and an offline machine can be given it by
copying one file. The cache is looked at first; a download is tried only when the file is
not there, with a socket timeout so that a firewalled machine fails in seconds, not hangs.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from fastfood.errors import FastfoodError, first_line

FNAME = "vgg19_weights_tf_dim_ordering_tf_kernels.h5"
URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
    "vgg19_weights_tf_dim_ordering_tf_kernels.h5"
)
MD5 = "cbe5617147190e668d6c5d5026f83318"
CACHE_SUBDIR = "models"
DOWNLOAD_TIMEOUT_S = 20.0


def keras_home() -> Path:
    """Keras's cache root, read now (Keras itself reads KERAS_HOME once, at import)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def cached_path() -> Path:
    """Where the file must be for offline use."""
    return keras_home() / CACHE_SUBDIR / FNAME


def imagenet_weights_path() -> str:
    """Path of the verified ImageNet VGG19 file, downloading it if it is not cached."""
    import keras

    target = cached_path()
    had_file = target.exists()
    if had_file and _md5(target) == MD5:
        return os.fspath(target)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return keras.utils.get_file(
            FNAME,
            URL,
            cache_subdir=CACHE_SUBDIR,
            file_hash=MD5,
            cache_dir=os.fspath(keras_home()),
        )
    except Exception as exc:  # URLError, timeout, hash mismatch: one message for all
        problem = (
            f"{target} does not match its MD5 {MD5} and re-downloading it failed"
            if had_file
            else f"{FNAME} is not in the Keras cache and downloading it failed"
        )
        raise FastfoodError(
            f"weights imagenet: {problem} ({_reason(exc)}); "
            f"offline, download {URL} elsewhere and put it at {target} "
            "(or set KERAS_HOME to the folder above models/)"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: Exception) -> str:
    """The last part of Keras's 'URL fetch failure on <url>: <code> -- <reason>'."""
    text = first_line(exc)
    return text.rsplit(" -- ", 1)[-1][:200]
