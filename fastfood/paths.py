"""Where fastfood keeps things it makes for the user (cache, runs), in one place."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Folder for generated data (the built-in sample); FASTFOOD_CACHE overrides."""
    env = os.environ.get("FASTFOOD_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fastfood"


def runs_dir() -> Path:
    """Default parent of run directories: ./runs under the working directory."""
    return Path(os.environ.get("FASTFOOD_RUNS", "runs"))
