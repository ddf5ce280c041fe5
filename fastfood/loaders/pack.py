"""`fastfood pack`: a dataset's splits written as TFRecord shards with DALI indexes.

The layout is `fastfood.data.shards`'s. What happens, per split (train, val, test):

1. The odd files are found once, here, so that no loader reads one again: the preflight
   (`validate.check_files`: empty, not an image, truncated, too many pixels) and then a
   real decode of every file that passes (`preprocess.decode_rgb`, on tf.data's parallel
   map), which catches a JPEG whose compressed data is corrupt. The files left out are
   listed in the manifest with the reason and printed.
2. The rest is written in a random order of its own (seeded by the split seed), so each
   shard holds a random mix of the classes: the loaders' epoch order shuffles the shards
   and the records inside each (`order.epoch_order` with groups), not across shards.
3. A shard is closed when it reaches `shard_mb` MB; beside each, its DALI index.

The output folder is made under a temporary name beside it and renamed when complete, so
an interrupted pack leaves no half-made dataset that `--data` would accept.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from fastfood.data import shards
from fastfood.data.spec import DatasetSpec
from fastfood.errors import FastfoodError, one_line
from fastfood.loaders import preprocess, validate

Say = Callable[[str], object]
PACK_ORDER_SALT = 0x7061636B  # 'pack': the packed order's stream, apart from the epochs'


def decode_failures(files: Sequence[str], threads: int = 0) -> dict[int, str]:
    """{index: reason} of the files whose bytes do not decode, decoding all in parallel."""
    if not files:
        return {}
    names = tf.constant([str(f) for f in files])

    def decodes(i: tf.Tensor) -> tf.Tensor:
        image = preprocess.decode_rgb(tf.io.read_file(names[i]))
        return i + 0 * tf.cast(tf.size(image) > 0, tf.int64)  # depends on the decode

    ds = tf.data.Dataset.range(len(files)).map(decodes, num_parallel_calls=tf.data.AUTOTUNE,
                                                deterministic=False)
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    if threads:
        options.threading.private_threadpool_size = threads
    done = {int(i) for i in ds.ignore_errors().with_options(options).as_numpy_iterator()}
    out = {}
    for i in sorted(set(range(len(files))) - done):  # find the decoder's own words
        try:
            preprocess.decode_rgb(tf.io.read_file(str(files[i])))
            out[i] = "failed to decode, decodes now (was the file being written?)"
        except (tf.errors.OpError, ValueError) as err:
            out[i] = one_line(err)
    return out


def _example(data: bytes, label: int, name: str) -> bytes:
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[name.encode("utf-8", "surrogateescape")])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class _ShardWriter:
    """Writes `<split>-NNNNN.tfrecord` files of at most `limit` bytes, each with its index."""

    def __init__(self, folder: Path, split: str, limit: int) -> None:
        self.folder, self.split, self.limit = folder, split, limit
        self.done: list[dict] = []
        self._writer: tf.io.TFRecordWriter | None = None
        self._offsets: list[tuple[int, int]] = []
        self._at = 0

    def _name(self) -> str:
        return f"{self.split}-{len(self.done):05d}.tfrecord"

    def write(self, record: bytes) -> None:
        if self._writer is None:
            self._writer = tf.io.TFRecordWriter(str(self.folder / self._name()))
        self._writer.write(record)
        size = len(record) + 16  # 8-byte length, 4-byte CRC of it, data, 4-byte CRC
        self._offsets.append((self._at, size))
        self._at += size
        if self._at >= self.limit:
            self.close()

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        name = self._name()
        index = name[: -len(".tfrecord")] + ".idx"
        (self.folder / index).write_text("".join(f"{o} {s}\n" for o, s in self._offsets))
        self.done.append({"file": name, "index": index, "count": len(self._offsets)})
        self._writer, self._offsets, self._at = None, [], 0


def _pad_record(folder: Path) -> None:
    """pad.tfrecord: one 8x8 grey JPEG labelled -1, what DALI's eval batches are filled with."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(out, "JPEG")
    writer = _ShardWriter(folder, shards.PAD, 1 << 62)
    writer.write(_example(out.getvalue(), -1, ""))
    writer.close()
    (folder / f"{shards.PAD}-00000.tfrecord").rename(folder / f"{shards.PAD}.tfrecord")
    (folder / f"{shards.PAD}-00000.idx").rename(folder / f"{shards.PAD}.idx")


def pack(spec: DatasetSpec, out: Path, *, shard_mb: float = shards.DEFAULT_SHARD_MB,
         seed: int = 0, max_pixels: int = validate.MAX_PIXELS, split_settings: dict | None = None,
         say: Say = print) -> dict:
    """Write `spec`'s splits as shards in `out` (which must not exist or be empty);
    returns the manifest."""
    out = Path(out)
    shards.check_out(out, shard_mb)
    if spec.layout == "shards":
        raise FastfoodError(f"{spec.root} is packed already")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.packing-", dir=out.parent))
    root = Path(spec.root)
    try:
        manifest: dict = {
            "format": shards.FORMAT, "version": shards.VERSION, "classes": list(spec.classes),
            "display_names": list(spec.display_names), "source": str(root),
            "layout": spec.layout, "split": split_settings or {}, "pack_seed": seed,
            "shard_mb": shard_mb, "splits": {},
        }
        for name in shards.SPLITS:
            split = getattr(spec, name)
            if not len(split):
                continue
            manifest["splits"][name] = _pack_split(
                name, split.files, split.labels, root, work, int(shard_mb * (1 << 20)),
                seed, max_pixels, say)
        _pad_record(work)
        (work / shards.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _pack_split(name: str, files: Sequence[str], labels: Sequence[int], root: Path,
                work: Path, limit: int, seed: int, max_pixels: int, say: Say) -> dict:
    good, bad = validate.check_files(files, max_pixels)
    failed = decode_failures([files[i] for i in good])
    skipped = bad + [(files[good[i]], reason) for i, reason in sorted(failed.items())]
    keep = [i for j, i in enumerate(good) if j not in failed]
    for path, reason in skipped:
        say(f"{name}: left out {path}: {reason}")
    if not keep:
        raise FastfoodError(f"none of the {len(files)} {name} images can be used "
                            f"(first: {skipped[0][0]}: {skipped[0][1]})")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, PACK_ORDER_SALT])))
    keep = [keep[i] for i in rng.permutation(len(keep))]
    writer = _ShardWriter(work, name, limit)
    names: list[str] = []
    for i in keep:
        path = str(files[i])
        rel = os.path.relpath(path, root)
        with open(path, "rb") as f:
            writer.write(_example(f.read(), int(labels[i]), rel))
        names.append(rel)
    writer.close()
    say(f"{name}: {len(keep)} images in {len(writer.done)} shards"
        + (f" ({len(skipped)} left out)" if skipped else ""))
    return {"shards": writer.done, "labels": [int(labels[i]) for i in keep], "names": names,
            "skipped": [[p, r] for p, r in skipped]}
