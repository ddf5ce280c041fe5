"""`fastfood audit`: what is wrong with a dataset before (or after) a model learns from it.

    result = audit("data/food", run_dir="runs/food")
    result.to_json()["leaks"]      # duplicate clusters that cross train / val / test

It finds:
- exact duplicates (the same bytes) and near duplicates (pHash within 6 bits:
  `fastfood.data.duplicates`; with a run also the network's embeddings, cosine >= 0.99
  after centring), as clusters; a cluster whose files are in two splits is a leak (val or
  test then measures memory), one whose files carry two labels is a label conflict;
- with a run: likely mislabeled files, those the model gives another class with at least
  --mislabel-confidence (calibrated) probability;
- class balance per split, and files that are unusable, tiny, huge, oddly shaped, not
  RGB or named for another format.

The split is the one training would draw: the run's data settings when a run is given,
else the defaults (for class folders: 10 % val, seed 0, duplicates grouped), so an audit
without a run shows the leaks `fastfood train` would still have.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.audit.inventory import Entry, Facts, entries, facts
from fastfood.data.duplicates import NEAR_DISTANCE, Cluster, clusters, hash_files
from fastfood.errors import FastfoodError

#: Default of --mislabel-confidence.
MISLABEL_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Mislabel:
    entry: int  # index into Audit.entries
    predicted: int
    p_predicted: float
    p_label: float


@dataclass(frozen=True)
class Audit:
    """Everything one audit found; indices point into `entries`."""

    root: str
    layout: str
    classes: tuple[str, ...]
    display_names: tuple[str, ...]
    entries: tuple[Entry, ...]
    facts: tuple[Facts, ...]
    clusters: tuple[Cluster, ...]
    mislabeled: tuple[Mislabel, ...] = ()
    run_dir: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def cluster_splits(self, c: Cluster) -> list[str]:
        return sorted({self.entries[i].split for i in c.members})

    def cluster_labels(self, c: Cluster) -> list[int]:
        return sorted({self.entries[i].label for i in c.members})

    @property
    def leaks(self) -> list[Cluster]:
        """Clusters with files in more than one split."""
        return [c for c in self.clusters if len(self.cluster_splits(c)) > 1]

    @property
    def conflicts(self) -> list[Cluster]:
        """Clusters whose files carry more than one label."""
        return [c for c in self.clusters if len(self.cluster_labels(c)) > 1]

    @property
    def odd(self) -> list[int]:
        return [i for i, f in enumerate(self.facts) if f.problems]

    def balance(self) -> dict[str, dict[str, int]]:
        """{split: {class: images}} (every class listed, 0 where it has none)."""
        counts = Counter((e.split, e.label) for e in self.entries)
        splits = sorted({e.split for e in self.entries}, key=("train", "val", "test").index)
        return {s: {c: counts[(s, k)] for k, c in enumerate(self.classes)} for s in splits}

    def imbalance(self) -> float | None:
        """Largest over smallest class in train (None when a class has no train image)."""
        train = self.balance().get("train", {})
        smallest = min(train.values(), default=0)
        return max(train.values()) / smallest if smallest else None

    def _cluster_json(self, c: Cluster) -> dict[str, Any]:
        return {"exact": c.exact, "found_by": list(c.found_by),
                "max_phash_distance": c.max_distance, "splits": self.cluster_splits(c),
                "classes": [self.classes[k] for k in self.cluster_labels(c)],
                "files": [{"file": self.entries[i].file, "split": self.entries[i].split,
                           "class": self.classes[self.entries[i].label]}
                          for i in c.members]}

    def to_json(self) -> dict[str, Any]:
        exact = [c for c in self.clusters if c.exact]
        return {
            "data": self.root, "layout": self.layout, "run_dir": self.run_dir,
            "settings": self.settings, "images": len(self.entries),
            "classes": list(self.classes),
            "summary": {
                "duplicate_clusters": len(self.clusters), "exact_clusters": len(exact),
                "near_clusters": len(self.clusters) - len(exact), "leaks": len(self.leaks),
                "label_conflicts": len(self.conflicts),
                "likely_mislabeled": len(self.mislabeled), "odd_files": len(self.odd),
                "imbalance": self.imbalance(),
            },
            "leaks": [self._cluster_json(c) for c in self.leaks],
            "label_conflicts": [self._cluster_json(c) for c in self.conflicts],
            "duplicates": [self._cluster_json(c) for c in self.clusters],
            "likely_mislabeled": [
                {"file": self.entries[m.entry].file, "split": self.entries[m.entry].split,
                 "label": self.classes[self.entries[m.entry].label],
                 "predicted": self.classes[m.predicted], "p_predicted": m.p_predicted,
                 "p_label": m.p_label} for m in self.mislabeled],
            "balance": self.balance(),
            "odd_files": [{"file": self.entries[i].file, "split": self.entries[i].split,
                           "problems": list(self.facts[i].problems),
                           "width": self.facts[i].width, "height": self.facts[i].height}
                          for i in self.odd],
            "notes": list(self.notes),
        }


def audit(
    data: str | os.PathLike[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    val_fraction: float | None = None,
    split_seed: int | None = None,
    group_duplicates: bool | None = None,
    max_distance: int = NEAR_DISTANCE,
    mislabel_confidence: float = MISLABEL_CONFIDENCE,
    embedding_similarity: float | None = None,
    loader: str = "auto",
    batch_size: int | None = None,
    tiny_side: int | None = None,
) -> Audit:
    """Audit `data` (default: the run's dataset); with `run_dir`, also through its model."""
    import dataclasses

    from fastfood import data as data_layer
    from fastfood.audit.inventory import TINY_SIDE
    from fastfood.config import DataConfig, LoaderConfig

    if not 0 <= max_distance <= 32:
        raise FastfoodError(f"--max-distance must be 0-32 bits, got {max_distance}")
    if not 0.0 < mislabel_confidence <= 1.0:
        raise FastfoodError(f"--mislabel-confidence must be in (0, 1], got "
                            f"{mislabel_confidence:g}")
    info = None
    if run_dir is not None:
        from fastfood.rundir import read_info

        info = read_info(run_dir)
    cfg = info.config.data if info is not None else DataConfig()
    if data is None and info is None:
        raise FastfoodError("give --data DIR, --run-dir RUN, or both")
    changes: dict[str, Any] = {}
    if data is not None:
        changes["root"] = str(data)
    for name, value in (("val_fraction", val_fraction), ("split_seed", split_seed),
                        ("group_duplicates", group_duplicates)):
        if value is not None:
            changes[name] = value
    cfg = dataclasses.replace(cfg, **changes)
    root = data_layer.root_of(cfg.root)
    spec = data_layer.load_config(dataclasses.replace(cfg, root=str(root)))
    if info is not None and set(spec.classes) != set(info.classes):
        missing = sorted(set(info.classes) - set(spec.classes))[:3]
        extra = sorted(set(spec.classes) - set(info.classes))[:3]
        raise FastfoodError(f"--data {root}: its classes are not the run's "
                            f"({len(spec.classes)} vs {len(info.classes)} classes; missing "
                            f"{missing}, not in the run {extra})")
    listed = entries(spec)
    if not listed:
        raise FastfoodError(f"--data {root}: no images")
    files = [e.file for e in listed]
    cap = info.config.loader.max_pixels if info is not None else LoaderConfig().max_pixels
    side = tiny_side if tiny_side is not None else TINY_SIDE
    file_facts = [facts(f, cap, side) for f in files]
    hashes = hash_files(files)
    settings: dict[str, Any] = {
        "val_fraction": cfg.val_fraction, "split_seed": cfg.split_seed,
        "group_duplicates": cfg.group_duplicates, "phash_max_distance": max_distance,
        "tiny_side": side}
    extra: dict[str, list[tuple[int, int]]] = {}
    mislabeled: list[Mislabel] = []
    notes: list[str] = []
    if info is not None:
        from fastfood.audit.network import EMBEDDING_SIMILARITY, likely_mislabeled, look, \
            similar_pairs
        from fastfood.inference.runs import load_run

        similarity = EMBEDDING_SIMILARITY if embedding_similarity is None \
            else float(embedding_similarity)
        model, info = load_run(info.run_dir)
        batch = int(batch_size or info.config.loader.batch_size or 64)
        view = look(model, info.image_size, info.temperature, files, batch_size=batch,
                    loader=loader, exif=info.exif)
        pairs, cut = similar_pairs(view.embeddings, similarity)
        extra["embedding"] = [(int(view.kept[a]), int(view.kept[b])) for a, b, _ in pairs]
        if cut:
            notes.append(f"embedding similarity {similarity:g} links too many images for this "
                         "model; only the most similar pairs were kept (raise "
                         "--embedding-similarity)")
        labels = np.asarray([listed[i].label for i in view.kept], dtype=np.int64)
        # the run's columns in the dataset's class order (class folders sort by name)
        probs = view.probs[:, [info.classes.index(c) for c in spec.classes]] \
            if len(view.probs) else view.probs
        mislabeled = [Mislabel(int(view.kept[r]), c, p, q) for r, c, p, q in
                      likely_mislabeled(probs, labels, mislabel_confidence)]
        settings.update(embedding_similarity=similarity,
                        mislabel_confidence=mislabel_confidence,
                        temperature=view.temperature, checkpoint=info.checkpoint_path)
        if view.temperature == 1.0:
            notes.append("the run has no calibration for these weights: 'confident' is the "
                         "raw softmax (run `fastfood calibrate`)")
    found = clusters(hashes, max_distance, extra=extra)
    return Audit(str(root), spec.layout, tuple(spec.classes), tuple(spec.display_names),
                 tuple(listed), tuple(file_facts), tuple(found), tuple(mislabeled),
                 str(info.run_dir) if info is not None else "", settings, tuple(notes))


def default_out(data: str | os.PathLike[str] | None,
                run_dir: str | os.PathLike[str] | None) -> Path:
    """Where the report goes without --out: RUN/audit, else ./audit-<dataset folder>."""
    if run_dir is not None:
        return Path(run_dir) / "audit"
    return Path(f"audit-{Path(os.fspath(data or 'data')).resolve().name}")
