"""Images per second of fastfood's own loaders, in training and in evaluation mode.

Each timed pass builds the dataset afresh, exactly as the training loop does once per
epoch (a new `epoch` each pass, so the order changes as it does in training), and drains
it; see `timing.time_passes` for what counts as start-up and what as steady state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastfood.benchmark.timing import batch_sizes

FASTFOOD_LOADERS = ("dali", "tfdata", "synthetic")


def loader_pass(
    kind: str, files: Sequence[str], labels: Sequence[int], *, training: bool, batch_size: int,
    image_size: int, seed: int = 0, num_threads: int = 0, crop: str = "inception",
) -> Callable[[], Iterable[int]]:
    """A factory of one pass (one epoch) of `fastfood.loaders.build(kind, ...)`."""
    from fastfood import loaders

    epochs = iter(range(1 << 30))

    def make() -> Iterable[int]:
        ds = loaders.build(
            kind, list(files), list(labels), training=training, batch_size=batch_size,
            image_size=image_size, seed=seed, epoch=next(epochs), crop=crop,
            num_threads=num_threads,
        )
        return batch_sizes(ds)

    return make


def check_enough_files(num_files: int, batch_size: int) -> None:
    """A training pass must have at least two full batches to time a steady state."""
    from fastfood.errors import FastfoodError

    if num_files < 2 * batch_size:
        raise FastfoodError(
            f"{num_files} images are too few to time batches of {batch_size}: "
            f"need at least {2 * batch_size} (use --batch-size or a larger --data)"
        )


def measure_rows(
    makers: dict[str, dict[str, Callable[[], Iterable[int]]]], *, warmup: int, repeats: int,
    errors: list[str] | None = None, progress: Callable[[str], None] = lambda _: None,
) -> dict[str, dict[str, Any]]:
    """`{name: {mode: pass factory}}` -> `{name: {mode: figures, "<mode>_img_s": x}}`.

    Per mode, every pipeline's passes are interleaved (`time_passes_interleaved`). A
    pipeline that fails gets `{"error": message}` (also appended to `errors`) and is not
    run again; a FastfoodError (bad input, not a broken pipeline) propagates.
    """
    from fastfood.benchmark.timing import time_passes_interleaved
    from fastfood.errors import FastfoodError, first_line

    rows: dict[str, dict[str, Any]] = {name: {} for name in makers}

    def failed(name: str, err: Exception) -> None:
        if isinstance(err, FastfoodError):
            raise err
        message = f"{type(err).__name__}: {first_line(err)}"
        rows[name] = {"error": message}
        if errors is not None:
            errors.append(f"loader {name}: {message}")

    for mode in ("train", "eval"):
        todo = {name: modes[mode] for name, modes in makers.items()
                if mode in modes and "error" not in rows[name]}
        if not todo:
            continue
        progress(f"loaders, {mode} mode: {', '.join(todo)} in turn")
        got = time_passes_interleaved(todo, warmup=warmup, repeats=repeats, on_error=failed)
        for name, throughput in got.items():
            rows[name][mode] = throughput.to_dict()
            rows[name][f"{mode}_img_s"] = rows[name][mode]["img_s"]
    return rows
