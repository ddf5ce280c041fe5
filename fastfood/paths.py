"""Where fastfood keeps things it makes for the user (cache, runs), in one place."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache() -> Path:
    """fastfood's folder in the user's cache: $XDG_CACHE_HOME/fastfood or ~/.cache/fastfood."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fastfood"


def cache_dir() -> Path:
    """Folder for generated data (the built-in sample); FASTFOOD_CACHE overrides."""
    env = os.environ.get("FASTFOOD_CACHE")
    return Path(env).expanduser() if env else user_cache()


def runs_dir() -> Path:
    """Default parent of run directories: ./runs under the working directory."""
    return Path(os.environ.get("FASTFOOD_RUNS", "runs"))


def file_cache() -> Path | None:
    """Folder of the per-file facts cache (`fastfood.data.filecache`), or None when
    FASTFOOD_FILE_CACHE is 'off'. Default: cache_dir()/files."""
    env = os.environ.get("FASTFOOD_FILE_CACHE", "")
    if env.lower() in ("off", "0", "none"):
        return None
    return Path(env).expanduser() if env else cache_dir() / "files"
