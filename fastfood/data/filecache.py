"""What fastfood learnt about each image file, kept between processes.

At Food-101's 101,000 files the preflight (a header walk per file) and the duplicate
hashes of the class-folder split (a small decode per file) are most of a run's start-up.
Their answers depend only on the file's bytes, so they are stored, per kind of fact,
under the file's (path, size, mtime_ns, ctime_ns): a second start of the same run (or any
run over the same files) stats each file and reads nothing else. A file that changed in
any way that moves its size, mtime or ctime is checked again; ctime is there because it
moves on every write even when a copy tool sets the old mtime back.

One SQLite file (stdlib, safe for several processes on one machine: the workers of a
local cluster start together) under `paths.file_cache()`; FASTFOOD_FILE_CACHE=off turns it
off. The cache is an optimisation only: a folder that cannot be written, or a damaged
file, is ignored and the facts are computed as without it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from fastfood import paths

DB_NAME = "facts-v1.sqlite"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS facts (kind TEXT, path TEXT, size INTEGER, "
           "mtime INTEGER, ctime INTEGER, value TEXT, PRIMARY KEY (kind, path))")

Key = tuple[int, int, int]  # size, mtime_ns, ctime_ns


def stat_key(path: str) -> Key | None:
    """(size, mtime_ns, ctime_ns) of `path`, None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _connect() -> sqlite3.Connection | None:
    folder = paths.file_cache()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(folder / DB_NAME, timeout=30)
        db.execute(_SCHEMA)
        return db
    except (sqlite3.Error, OSError):
        return None


def _load(db: sqlite3.Connection, kind: str) -> dict[str, tuple[Key, str]]:
    rows = db.execute("SELECT path, size, mtime, ctime, value FROM facts WHERE kind = ?",
                      (kind,))
    return {p: ((s, m, c), v) for p, s, m, c, v in rows}


def facts(kind: str, files: Sequence[str], compute: Callable[[list[str]], list[Any]]
          ) -> list[Any]:
    """`compute(paths)` (one JSON-able value per path) for every file, taken from the cache
    where the file is unchanged since it was stored; new answers are stored. `kind` names
    the fact and everything besides the bytes it depends on (e.g. 'preflight:89478485').
    A file that cannot be stat'ed is computed every time (its answer says why)."""
    paths_ = [os.path.abspath(str(f)) for f in files]
    db = _connect()
    known: dict[str, tuple[Key, str]] = {}
    if db is not None:
        try:
            known = _load(db, kind)
        except sqlite3.Error:
            db = None
    keys = [stat_key(p) for p in paths_]
    out: list[Any] = [None] * len(paths_)
    todo: list[int] = []
    for i, (path, key) in enumerate(zip(paths_, keys)):
        hit = known.get(path) if key is not None else None
        if hit is not None and hit[0] == key:
            out[i] = json.loads(hit[1])
        else:
            todo.append(i)
    if todo:
        values = compute([str(files[i]) for i in todo])
        for i, value in zip(todo, values):
            out[i] = value
        if db is not None:
            rows = [(kind, paths_[i], *keys[i], json.dumps(value))
                    for i, value in zip(todo, values) if keys[i] is not None]
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?, ?)",
                                   rows)
            except sqlite3.Error:
                pass
    if db is not None:
        db.close()
    return out


def remembered(kind: str, key: str, compute: Callable[[], Any]) -> Any:
    """`compute()` (JSON-able), kept under `key`: for a fact about many files at once
    whose key already says everything it depends on (a digest of their facts)."""
    db = _connect()
    if db is not None:
        try:
            row = db.execute("SELECT value FROM facts WHERE kind = ? AND path = ?",
                             (kind, key)).fetchone()
            if row is not None:
                db.close()
                return json.loads(row[0])
        except sqlite3.Error:
            pass
    value = compute()
    if db is not None:
        try:
            with db:
                db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, 0, 0, 0, ?)",
                           (kind, key, json.dumps(value)))
        except sqlite3.Error:
            pass
        db.close()
    return value
