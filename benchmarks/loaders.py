"""Loader throughput: fastfood's loaders against the pipelines a user would otherwise use.

One process, the same files, the same output size and batch for every pipeline, each
timed in training mode (shuffled, random crop + flip, full batches) and evaluation mode
(input order, centre crop, last partial batch kept). The yardstick is `limit`: a full
PIL decode of every file on every core and nothing else (see peers.py). Results go to a
JSON file (machine, versions, settings, every repeat) and a PNG chart beside it.

    python benchmarks/make_dataset.py /tmp/ffbench --n 1200
    python benchmarks/loaders.py --data /tmp/ffbench   # -> benchmarks/results/loaders.{json,png}

Targets: the best fastfood loader >= 0.95x the limit in eval mode and >= 1.0x in train
mode, and >= 1.15x the `seed` baseline pipeline (peers.py) in both. A target counts as met when both
the quotient of medians and the median of same-round quotients (`paired_ratio`) meet it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import peers

from fastfood.benchmark import loaders as fastfood_loaders
from fastfood import machine
from fastfood.benchmark import report
from fastfood.loaders import native

FASTFOOD = ("dali", "tfdata", "synthetic")
# The DALI loader as it was before fastfood's native resize: DALI's own fn.resize on the CPU
# backend (FASTFOOD_NATIVE=0 while the pipeline is built), timed beside it as the "before".
BEFORE = ("dali_fnresize",)
PEERS = ("seed", "keras", "pil")
ALL = ("limit",) + FASTFOOD + BEFORE + PEERS
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"eval_vs_limit": 0.95, "train_vs_limit": 1.0, "eval_vs_seed": 1.15,
           "train_vs_seed": 1.15}


@dataclasses.dataclass(frozen=True)
class Settings:
    data: str
    loaders: tuple[str, ...] = ALL
    modes: tuple[str, ...] = ("train", "eval")
    batch_size: int = 64
    image_size: int = 224
    warmup: int = 1
    repeats: int = 5
    num_threads: int = 0
    seed: int = 0


def keras_root(spec_root: str, layout: str) -> str:
    """The folder `image_dataset_from_directory` must be given for the same files."""
    return str(Path(spec_root) / "images") if layout == "food101" else spec_root


def without_native(make: Callable[[], Iterable[int]]) -> Callable[[], Iterable[int]]:
    """The same pass factory, with the DALI pipeline built while FASTFOOD_NATIVE=0."""

    def build() -> Iterable[int]:
        old = os.environ.get("FASTFOOD_NATIVE")
        os.environ["FASTFOOD_NATIVE"] = "0"
        try:
            return make()  # DALIDataset serialises the pipeline here, so the switch sticks
        finally:
            if old is None:
                del os.environ["FASTFOOD_NATIVE"]
            else:
                os.environ["FASTFOOD_NATIVE"] = old

    return build


def measure(s: Settings) -> dict[str, Any]:
    """Time every pipeline in every mode; returns the result dict (no ratios yet)."""
    from fastfood import data

    spec = data.load(s.data)
    files = list(spec.train.files) + list(spec.val.files)
    labels = list(spec.train.labels) + list(spec.val.labels)
    fastfood_loaders.check_enough_files(len(files), s.batch_size)
    info = machine.machine_info(with_gpus=False)
    result: dict[str, Any] = {
        "machine": info,
        "settings": {**dataclasses.asdict(s), "num_files": len(files), "layout": spec.layout,
                     "dali_cpu_resize": native.describe()},
        "warnings": [w for w in [machine.busy_warning(info)] if w],
        "loaders": {},
    }
    common = dict(batch_size=s.batch_size, image_size=s.image_size)
    unknown = [name for name in s.loaders if name not in ALL]
    if unknown:
        raise SystemExit(f"unknown loader(s) {','.join(unknown)}; known: {','.join(ALL)}")

    def maker(name: str, mode: str, limit: Any) -> Callable[[], Iterable[int]]:
        training = mode == "train"
        if name == "limit":
            return limit  # the same decode-only work in both modes
        if name in FASTFOOD:
            return fastfood_loaders.loader_pass(name, files, labels, training=training,
                                                seed=s.seed, num_threads=s.num_threads,
                                                **common)
        if name == "dali_fnresize":
            return without_native(fastfood_loaders.loader_pass(
                "dali", files, labels, training=training, seed=s.seed,
                num_threads=s.num_threads, **common))
        if name == "seed":
            return peers.make_seed(files, training=training, seed=s.seed, **common)
        if name == "keras":
            return peers.make_keras(keras_root(str(spec.root), spec.layout), training=training,
                                    seed=s.seed, **common)
        return peers.make_pil(files, training=training, seed=s.seed, threads=s.num_threads,
                              **common)

    # The limit's process pool starts first and lives through every pass, so process
    # start-up is never timed; it is timed in turn with the others, in both modes.
    pool = (peers.DecodeLimit(files, processes=s.num_threads) if "limit" in s.loaders
            else contextlib.nullcontext())
    with pool as limit:
        makers = {name: {mode: maker(name, mode, limit) for mode in s.modes}
                  for name in s.loaders}
        errors: list[str] = []
        result["loaders"] = fastfood_loaders.measure_rows(
            makers, warmup=s.warmup, repeats=s.repeats, errors=errors,
            progress=lambda msg: print(f"[loaders] {msg}", file=sys.stderr, flush=True))
    result["errors"] = errors
    return result


def paired_ratio(row: dict[str, Any], ref: dict[str, Any]) -> float | None:
    """Median over rounds of (this pass's img/s / the reference's pass of the same round).

    Passes of one round run back to back, so each quotient compares two pipelines under the
    same machine conditions; on a VM whose speed drifts by tens of percent over a minute this
    is steadier than the quotient of the two medians, which pairs passes from different times.
    """
    a, b = row.get("img_s_all"), ref.get("img_s_all")
    if not a or not b or len(a) != len(b):
        return None
    return round(statistics.median(x / y for x, y in zip(a, b) if y > 0), 3)


def add_ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Each loader against the limit and the seed baseline; fastfood's best against the targets."""
    rows = result["loaders"]
    summary: dict[str, Any] = {}
    for mode in ("train", "eval"):
        limit = rows.get("limit", {}).get(f"{mode}_img_s")
        seed = rows.get("seed", {}).get(f"{mode}_img_s")
        peer_rates = {p: rows[p][f"{mode}_img_s"] for p in PEERS
                      if f"{mode}_img_s" in rows.get(p, {})}
        best_peer = max(peer_rates, key=peer_rates.get) if peer_rates else None
        for name, row in rows.items():
            rate = row.get(f"{mode}_img_s")
            if rate is None or name == "limit":
                continue
            if limit:
                row[f"{mode}_vs_limit"] = round(rate / limit, 3)
                paired = paired_ratio(row.get(mode, {}), rows["limit"].get(mode, {}))
                if paired is not None:
                    row[f"{mode}_vs_limit_paired"] = paired
            if seed and name != "seed":
                row[f"{mode}_vs_seed"] = round(rate / seed, 3)
                paired = paired_ratio(row.get(mode, {}), rows["seed"].get(mode, {}))
                if paired is not None:
                    row[f"{mode}_vs_seed_paired"] = paired
            if best_peer and name not in PEERS:
                row[f"{mode}_vs_best_peer"] = round(rate / peer_rates[best_peer], 3)
        ours = {k: rows[k][f"{mode}_img_s"] for k in ("dali", "tfdata")
                if f"{mode}_img_s" in rows.get(k, {})}
        if ours:
            best = max(ours, key=ours.get)
            summary[mode] = {"best_fastfood_loader": best, "img_s": ours[best],
                             "best_peer": best_peer}
            for ref in ("limit", "seed"):
                key = f"{mode}_vs_{ref}"
                if key in rows[best]:
                    # Met only if both estimates meet it: the quotient of the medians and
                    # the median of the paired (same-round) quotients.
                    both = [rows[best][key], rows[best].get(f"{key}_paired", rows[best][key])]
                    summary[mode][key] = rows[best][key]
                    summary[mode][f"{key}_paired"] = both[1]
                    summary[mode][f"{key}_target"] = TARGETS[key]
                    summary[mode][f"{key}_met"] = min(both) >= TARGETS[key]
    result["targets"] = summary
    return result


def print_targets(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Loader targets: best fastfood loader", title_justify="left")
    for col in ("mode", "loader", "img/s", "ratio", "target", "met"):
        table.add_column(col)
    for mode, row in result.get("targets", {}).items():
        for ref in ("limit", "seed"):
            key = f"{mode}_vs_{ref}"
            if key in row:
                table.add_row(mode, row["best_fastfood_loader"], f"{row['img_s']:.1f}",
                              f"{row[key]:.2f}x {ref} (paired {row[key + '_paired']:.2f}x)",
                              f">= {row[key + '_target']}x",
                              "yes" if row[key + "_met"] else "[red]no[/red]")
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset folder (class folders or Food-101)")
    parser.add_argument("--loaders", default=",".join(ALL), help=f"subset of {','.join(ALL)}")
    parser.add_argument("--modes", default="train,eval")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes")
    parser.add_argument("--num-threads", type=int, default=0, help="0: all cores")
    parser.add_argument("--json", default="", help="default: benchmarks/results/loaders.json")
    parser.add_argument("--chart", default="", help="default: the JSON path with .png")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    s = Settings(data=args.data, loaders=tuple(args.loaders.split(",")),
                 modes=tuple(args.modes.split(",")), batch_size=args.batch_size,
                 image_size=args.image_size, warmup=args.warmup, repeats=args.repeats,
                 num_threads=args.num_threads)
    start = time.perf_counter()
    result = add_ratios(measure(s))
    result["wall_s"] = round(time.perf_counter() - start, 1)
    json_path = Path(args.json or RESULTS / "loaders.json")
    report.write_json(result, json_path)
    chart = report.loader_chart(result, args.chart or json_path.with_suffix(".png"),
                                reference="limit")
    report.print_report({**result, "labels": {"loaders": (
        f"Loaders: {result['settings']['num_files']} images -> {s.image_size} px, batch "
        f"{s.batch_size}; img/s steady state, median of {s.repeats} passes")}})
    print_targets(result)
    print(f"wrote {json_path} and {chart} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
