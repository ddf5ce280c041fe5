"""Exact and near-duplicate images: content hashes, a perceptual hash, and their clusters.

Used by the split (class folders keep a duplicate cluster on one side, `group_duplicates`)
and by `fastfood audit`. No TensorFlow: Pillow and numpy.

- Exact: the same bytes (BLAKE2b of the file).
- Near: pHash (a 64-bit DCT hash of the 32x32 grey image, as in Zauner 2010 and the
  `imagehash` package: the 8x8 lowest frequencies compared with their median) within
  `NEAR_DISTANCE` bits. Written here in a dozen lines of numpy rather than depending on
  `imagehash`, which pulls in SciPy and PyWavelets for what is one matrix product here.
  On 5,663 Food-101 photos (/work/data/food-real), half-size, quality-50 and PNG copies of
  200 of them were at most 4 bits away (brightness +15 %: at most 6); between different
  photos the closest pairs were 0 and 6 bits (all true near-duplicates: the same photo
  uploaded twice) and then 8 (a cannoli and an empty plate). 6 is the threshold.
  Crops move the hash far (a 5 % crop: 4-26 bits); the audit's embeddings find those.

Clusters are the connected components of "exact or near duplicate" (union-find), each
listed with its members in input order, so the same files give the same clusters.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fastfood.data import filecache

#: Largest Hamming distance (of 64 bits) between the pHashes of near duplicates.
NEAR_DISTANCE = 6
_SIDE = 32
_LOW = 8


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: D @ x is the DCT of the columns of x."""
    k = np.arange(n)
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d


_DCT = _dct_matrix(_SIDE)


def content_hash(path: str) -> str | None:
    """BLAKE2b-128 of the file's bytes (hex), None when it cannot be read."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def perceptual_hash(path: str | io.BytesIO) -> int | None:
    """The 64-bit pHash of an image file (see the module doc), None when it cannot be decoded.

    JPEGs decode in Pillow's draft mode at the smallest DCT scale still >= 64 px, which is
    2-3x faster than a full decode and leaves the 32x32 grey image all but unchanged.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("L", (2 * _SIDE, 2 * _SIDE))
            grey = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS)
            pixels = np.asarray(grey, dtype=np.float64)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    low = (_DCT @ pixels @ _DCT.T)[:_LOW, :_LOW]
    flat = np.sort(low, axis=None)  # the median of 64 values, without np.median's overhead
    bits = (low > (flat[31] + flat[32]) / 2).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


@dataclass(frozen=True)
class Hashes:
    """Index-aligned with the files: content hash ('' unreadable) and pHash (valid[i])."""

    content: tuple[str, ...]
    phash: np.ndarray  # uint64 [n]
    valid: np.ndarray  # bool [n]: the pHash could be computed


_READ_WHOLE = 32 << 20  # larger files are streamed through the content hash


def _both(path: str) -> tuple[str, int | None]:
    """Both hashes from one read of the file."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > _READ_WHOLE:
                return content_hash(path) or "", perceptual_hash(path)
            data = f.read()
    except OSError:
        return "", None
    return hashlib.blake2b(data, digest_size=16).hexdigest(), perceptual_hash(io.BytesIO(data))


def _hash_all(paths: list[str], workers: int) -> list[tuple[str, int | None]]:
    """Both hashes of each path, on threads: Pillow's decoder releases the GIL, which is
    what a photo's hash spends (a tiny file's is mostly Python, which threads cannot
    spread; worker processes could, but would re-run a caller's unguarded script)."""
    if workers == 1 or len(paths) < 64:
        return [_both(p) for p in paths]
    with ThreadPoolExecutor(workers, thread_name_prefix="fastfood-hash") as pool:
        return list(pool.map(_both, paths, chunksize=32))


def hash_files(files: Sequence[str], threads: int = 0) -> Hashes:
    """Both hashes of every file, on a few cores, kept in the file-facts cache
    (`fastfood.data.filecache`): the split and the audit, and a second start, hash an
    unchanged file once between them."""
    workers = threads or min(8, os.cpu_count() or 1)
    found = filecache.facts(f"hashes:{_SIDE}:{_LOW}", [str(f) for f in files],
                            lambda paths: _hash_all(paths, workers))
    results = [(c, p) for c, p in found]
    phash = np.array([p or 0 for _, p in results], dtype=np.uint64)
    valid = np.array([p is not None for _, p in results], dtype=bool)
    return Hashes(tuple(c for c, _ in results), phash, valid)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """Bit differences between uint64 hashes (broadcast). numpy >= 2 counts bits natively
    (about 10x the byte table, which matters at 100,000 files)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.uint64(b) if isinstance(b, int)
                       else np.asarray(b, dtype=np.uint64))
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    return _POPCOUNT[x[..., None].view(np.uint8)].sum(axis=-1, dtype=np.int64)


def near_pairs(phash: np.ndarray, max_distance: int = NEAR_DISTANCE
               ) -> list[tuple[int, int, int]]:
    """(i, j, distance), i < j, linking every hash within `max_distance` bits of another:
    equal hashes are linked to the first of them only (enough for clusters).

    Exact by the pigeonhole principle: split the 64 bits into max_distance + 1 chunks; two
    hashes within max_distance bits agree on at least one whole chunk, so only hashes that
    share a chunk value are compared. Equal hashes are compared once, as one value.
    """
    phash = np.asarray(phash, dtype=np.uint64)
    values, inverse = np.unique(phash, return_inverse=True)
    candidates: set[tuple[int, int]] = set()
    edges = np.linspace(0, 64, max_distance + 2).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        key = (values >> np.uint64(lo)) & np.uint64((1 << int(hi - lo)) - 1)
        order = np.argsort(key, kind="stable")
        sorted_keys = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends):
            if e - s < 2:
                continue
            members = order[s:e]
            d = hamming(values[members][:, None], values[members][None, :])
            a, b = np.nonzero(np.triu(d <= max_distance, k=1))
            candidates.update(zip(members[a].tolist(), members[b].tolist()))
    by_value: dict[int, list[int]] = {}
    for i, v in enumerate(inverse.tolist()):
        by_value.setdefault(v, []).append(i)
    pairs: set[tuple[int, int, int]] = set()
    for group in by_value.values():  # the same hash: distance 0
        pairs.update((group[0], j, 0) for j in group[1:])
    for u, v in candidates:
        u, v = min(u, v), max(u, v)
        dist = int(hamming(values[u], int(values[v])))
        first, second = by_value[u][0], by_value[v][0]
        pairs.add((min(first, second), max(first, second), dist))
    return sorted(pairs)


@dataclass(frozen=True)
class Cluster:
    """Files that are the same image: `exact` when all have the same bytes; `found_by`
    names the links that joined them: bytes, phash, or whatever extra links were given."""

    members: tuple[int, ...]  # indices into the files, ascending
    exact: bool
    max_distance: int  # largest pHash distance between two of its members (0 if exact)
    found_by: tuple[str, ...] = ()


def clusters(hashes: Hashes, max_distance: int = NEAR_DISTANCE, *, near: bool = True,
             extra: dict[str, list[tuple[int, int]]] | None = None) -> list[Cluster]:
    """Clusters of two or more files: same bytes, or pHash within `max_distance`
    (transitively), or linked by `extra` pairs ({kind: [(i, j), ...]}, the audit's
    embedding neighbours). Unreadable files (no content hash) join by `extra` only."""
    n = len(hashes.content)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links: list[tuple[int, int, str]] = []
    first_of: dict[str, int] = {}
    for i, digest in enumerate(hashes.content):
        if digest:
            links.append((first_of.setdefault(digest, i), i, "bytes"))
    if near:
        valid = np.flatnonzero(hashes.valid)
        links += [(int(valid[a]), int(valid[b]), "phash")
                  for a, b, _ in near_pairs(hashes.phash[valid], max_distance)]
    for kind, pairs in (extra or {}).items():
        links += [(int(i), int(j), kind) for i, j in pairs]
    for i, j, _ in links:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    kinds: dict[int, set[str]] = {}
    for i, j, kind in links:
        if i != j:
            kinds.setdefault(find(i), set()).add(kind)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = []
    for root, members in groups.items():
        if len(members) < 2:
            continue
        exact = len({hashes.content[i] for i in members}) == 1 and bool(hashes.content[members[0]])
        ok = [i for i in members if hashes.valid[i]]
        spread = int(hamming(hashes.phash[ok][:, None], hashes.phash[ok][None, :]).max()) \
            if len(ok) > 1 and not exact else 0
        out.append(Cluster(tuple(members), exact, spread, tuple(sorted(kinds.get(root, ())))))
    return sorted(out, key=lambda c: c.members[0])


def group_keys(files: Sequence[str], max_distance: int = NEAR_DISTANCE) -> dict[str, str]:
    """{file: key} for every file in a duplicate cluster (the cluster's first file), for
    the split to keep each cluster on one side; files without duplicates are absent."""
    files = [str(f) for f in files]
    hashes = hash_files(files)

    def compute() -> dict[str, str]:
        keys: dict[str, str] = {}
        for cluster in clusters(hashes, max_distance):
            head = files[cluster.members[0]]
            keys.update({files[i]: head for i in cluster.members})
        return keys

    # The clusters follow from the names and hashes alone: a second start over the same
    # files (a digest of both) skips the pairwise search, a second or so at 100,000 files.
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{max_distance}\0{len(files)}\0".encode())
    digest.update("\0".join(files).encode("utf-8", "surrogateescape"))
    digest.update("\0".join(hashes.content).encode())
    digest.update(hashes.phash.tobytes() + hashes.valid.tobytes())
    return filecache.remembered("clusters", digest.hexdigest(), compute)
