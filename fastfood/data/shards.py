"""Packed shards: a dataset written by `fastfood pack` as TFRecord files with DALI indexes.

Why: at 100,000 small files the per-file costs (a lookup, an open, a read each) dominate
on a network file system or a bucket; a few hundred-MB files read front to back do not
have them. The layout, in one folder:

- `shards.json`: the manifest: format and version, classes, display names, where the
  data came from and how it was split, and per split the shards (file, index file,
  record count), each record's source file name and label, and the files left out at
  pack time (`skipped`, with the reason).
- `<split>-00000.tfrecord` ...: TFRecord files of `tf.train.Example` records with
  `image/encoded` (the file's bytes, unchanged), `image/class/label` (int64) and
  `image/filename` (the source path relative to the dataset root). Any TFRecord reader
  reads them (tf.data's `TFRecordDataset`, DALI's `fn.readers.tfrecord`).
- `<split>-00000.idx`: DALI's index, one `offset size` line per record (what DALI's
  `tfrecord2idx` writes: the byte offset of the record and its framed length).
- `pad.tfrecord`, `pad.idx`: one record with label -1 (a tiny grey JPEG), which DALI's
  fixed-size eval batches are filled up with.

In a DatasetSpec a record is named `<shard path>#<record number>`, so every layer that
carries file lists (feeds, splits, failure messages) carries records unchanged; the
loaders see these names and read the shards (`fastfood.loaders.records`). No TensorFlow
here: this module reads the manifest and the indexes.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fastfood.data.spec import DatasetSpec, Split
from fastfood.errors import FastfoodError

MANIFEST = "shards.json"
FORMAT = "fastfood-shards"
VERSION = 1
PAD = "pad"  # the padding record's shard name
SPLITS = ("train", "val", "test")
DEFAULT_SHARD_MB = 256  # a few thousand photos: few files, and one a pipeline can hold
_SEP = "#"


def check_out(out: Path, shard_mb: float) -> None:
    """Refuse a pack's --out that holds something, and a --shard-mb that is not positive,
    before any file is read."""
    if shard_mb <= 0:
        raise FastfoodError(f"--shard-mb must be above 0, got {shard_mb:g}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FastfoodError(f"--out {out} exists and is not an empty folder")


def is_shards(root: str | os.PathLike[str]) -> bool:
    """Whether `root` is a folder `fastfood pack` wrote."""
    return (Path(root) / MANIFEST).is_file()


def ref(shard: str, record: int) -> str:
    """The name of one record: its shard's path and its number in the shard."""
    return f"{shard}{_SEP}{record}"


def parse_ref(name: str) -> tuple[str, int]:
    """(shard path, record number) of a record's name."""
    shard, _, record = name.rpartition(_SEP)
    return shard, int(record)


def are_refs(files: Sequence[str]) -> bool:
    """Whether a file list names packed records (a list is all records or all files)."""
    return bool(files) and f".tfrecord{_SEP}" in str(files[0])


def index_path(shard: str) -> str:
    """The DALI index beside a shard."""
    return shard[: -len(".tfrecord")] + ".idx" if shard.endswith(".tfrecord") else shard + ".idx"


@functools.lru_cache(maxsize=256)
def read_index(shard: str) -> np.ndarray:
    """int64 [records, 2]: (offset, framed size) of each record of `shard`, from its index."""
    path = index_path(shard)
    try:
        table = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as err:
        raise FastfoodError(f"cannot read the shard index {path}: {err}") from None
    if table.shape[1:] != (2,):
        raise FastfoodError(f"{path}: expected 'offset size' per line")
    return table


def runs(names: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """The records in reading order as runs of one shard each: (shard, record numbers)."""
    out: list[tuple[str, list[int]]] = []
    for name in names:
        shard, record = parse_ref(str(name))
        if out and out[-1][0] == shard:
            out[-1][1].append(record)
        else:
            out.append((shard, [record]))
    return [(shard, np.asarray(records, dtype=np.int64)) for shard, records in out]


def group_sizes(names: Sequence[str]) -> tuple[int, ...]:
    """Counts of consecutive records of the same shard: the groups of the epoch order."""
    return tuple(len(records) for _, records in runs(names))


def pad_shard(names: Sequence[str]) -> str:
    """The padding record's shard beside the shards of these records."""
    return str(Path(parse_ref(str(names[0]))[0]).with_name(f"{PAD}.tfrecord"))


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FastfoodError(f"cannot read {path}: {err}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise FastfoodError(f"{path}: not a {FORMAT} v{VERSION} manifest (written by another "
                            "fastfood? pack the dataset again)")
    return manifest


def load_shards(root: str | os.PathLike[str]) -> DatasetSpec:
    """The spec of a packed dataset: its splits as record names, in packed order."""
    root = Path(root).absolute()
    manifest = read_manifest(root)
    classes = tuple(manifest["classes"])
    splits: dict[str, Split] = {}
    for name in SPLITS:
        entry = manifest["splits"].get(name)
        if not entry:
            splits[name] = Split()
            continue
        names: list[str] = []
        for shard in entry["shards"]:
            path = root / shard["file"]
            if not path.is_file() or not (root / shard["index"]).is_file():
                raise FastfoodError(f"{root}: shard {shard['file']} or its index is missing")
            names.extend(ref(str(path), i) for i in range(int(shard["count"])))
        labels = tuple(int(x) for x in entry["labels"])
        if len(labels) != len(names):
            raise FastfoodError(f"{root / MANIFEST}: split {name} lists {len(labels)} labels "
                                f"for {len(names)} records")
        splits[name] = Split(tuple(names), labels)
    return DatasetSpec(str(root), "shards", classes, tuple(manifest["display_names"]),
                       splits["train"], splits["val"], splits["test"])
