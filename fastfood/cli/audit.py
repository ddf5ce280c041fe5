"""`fastfood audit --data DIR [--run-dir RUN]`: check a dataset (fastfood.audit).

Writes audit.json and audit.html into --out (default: RUN/audit with a run, else
./audit-<dataset folder>) and prints a summary, or with --json the JSON alone on stdout.
Without a run nothing imports TensorFlow. Exit code 0 whatever is found (findings are not
errors); --fail-on-leak exits 1 when a duplicate crosses splits or carries two labels, for
a CI check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fastfood.cli.stdout import answers_only
from fastfood.config import FILE_KINDS


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: the run's).")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="A trained run on this dataset: adds likely mislabeled files and "
                   "near duplicates by the network's embeddings; its split settings apply.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for audit.json and audit.html.")
@click.option("--val-fraction", type=float, default=None,
              help="Class folders: the split to check (default: the run's, else 0.1).")
@click.option("--split-seed", type=int, default=None)
@click.option("--group-duplicates/--no-group-duplicates", default=None,
              help="Class folders: check the split drawn with or without duplicate "
                   "grouping (default: the run's setting, else on, as new runs train).")
@click.option("--max-distance", type=int, default=None,
              help="pHash bits (of 64) within which two images are near duplicates [6].")
@click.option("--mislabel-confidence", type=float, default=None,
              help="With a run: flag files the model gives another class with at least "
                   "this probability [0.9].")
@click.option("--embedding-similarity", type=float, default=None,
              help="With a run: cosine of centred embeddings from which two images are "
                   "near duplicates [0.99].")
@click.option("--tiny-side", type=int, default=None,
              help="Images whose shorter side is under this many pixels are 'tiny' [64].")
@click.option("--loader", type=click.Choice(FILE_KINDS), default=FILE_KINDS[0], show_default=True)
@click.option("--batch-size", type=int, default=None)
@click.option("--json", "as_json", is_flag=True, help="Print audit.json's content instead.")
@click.option("--fail-on-leak", is_flag=True,
              help="Exit 1 when a duplicate crosses splits or carries two labels.")
def audit(data: Path | None, run_dir: Path | None, out: Path | None,
          val_fraction: float | None, split_seed: int | None, group_duplicates: bool | None,
          max_distance: int | None, mislabel_confidence: float | None,
          embedding_similarity: float | None, tiny_side: int | None, loader: str,
          batch_size: int | None, as_json: bool, fail_on_leak: bool) -> None:
    """Check a dataset: duplicates, leaks between splits, likely wrong labels, odd files."""
    from fastfood.audit.audit import MISLABEL_CONFIDENCE, audit as run_audit, default_out
    from fastfood.data import check_root
    from fastfood.data.duplicates import NEAR_DISTANCE
    from fastfood.rundir import read_info, write_json

    if data is not None:
        check_root(data)
    if run_dir is not None:
        read_info(run_dir)  # a one-line error now, before anything is read
    folder = out or default_out(data, run_dir)
    with answers_only() as stdout:
        found = run_audit(
            data, run_dir, val_fraction=val_fraction, split_seed=split_seed,
            group_duplicates=group_duplicates,
            max_distance=NEAR_DISTANCE if max_distance is None else max_distance,
            mislabel_confidence=(MISLABEL_CONFIDENCE if mislabel_confidence is None
                                 else mislabel_confidence),
            embedding_similarity=embedding_similarity, loader=loader,
            batch_size=batch_size, tiny_side=tiny_side)
        from fastfood.audit.page import write_report

        folder.mkdir(parents=True, exist_ok=True)
        result = found.to_json()
        write_json(folder / "audit.json", result)
        write_report(found, folder / "audit.html")
        if as_json:
            click.echo(json.dumps(result), file=stdout)
        else:
            s = result["summary"]
            for line in (
                f"{result['images']} images, {len(found.classes)} classes ({found.layout}); "
                f"largest/smallest class in train: "
                + (f"{s['imbalance']:.1f}x" if s["imbalance"] else "a class has none"),
                f"duplicates: {s['exact_clusters']} exact and {s['near_clusters']} near "
                f"clusters; {s['leaks']} cross splits, {s['label_conflicts']} carry two "
                "labels",
                (f"likely mislabeled: {s['likely_mislabeled']}" if found.run_dir
                 else "likely mislabeled: give --run-dir to check"),
                f"odd files: {s['odd_files']}", *found.notes,
                f"wrote {folder / 'audit.json'} and {folder / 'audit.html'}",
            ):
                click.echo(f"fastfood audit: {line}", file=stdout)
    if fail_on_leak and (found.leaks or found.conflicts):
        sys.exit(1)
