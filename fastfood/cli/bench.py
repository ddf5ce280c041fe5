"""`fastfood bench`: how fast this machine loads images and trains, as a table and JSON.

stdout carries the tables (or, with ``--json -``, the JSON record as one line) and nothing
else: what DALI, TensorFlow or libjpeg print goes to stderr (``fastfood.cli.stdout``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from fastfood.benchmark import suite
from fastfood.cli.stdout import answers_only
from fastfood.errors import FastfoodError

DEFAULTS = suite.BenchSettings()


def _csv(value: str, flag: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise FastfoodError(f"{flag} needs at least one value")
    return items


@click.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Dataset folder (Food-101 or class folders). Default: the built-in sample.")
@click.option("--what", default=",".join(DEFAULTS.what), show_default=True,
              help=f"Comma list of {', '.join(suite.WHAT)}: loaders alone, train (synthetic "
                   "input + Keras fit), e2e (real loaders into training), predict, serve "
                   "(fastfood serve on 127.0.0.1 vs offline predict, latency, memory, overload), "
                   "precision (fp32 vs bf16/fp16 inference: conv peak, forward, batch predict, "
                   "evaluate, serve, cold predict; use --width 1 for the real model).")
@click.option("--loaders", "loader_kinds", default=",".join(DEFAULTS.loaders),
              show_default=True, help="Loaders to measure.")
@click.option("--precision", "precisions", default="",
              help=f"Comma list of {', '.join(suite.PRECISIONS)}. Default: fp32, plus mixed "
                   "where the hardware runs it natively (tensor-core GPU, AVX512-BF16/AMX CPU).")
@click.option("--batch-size", default=DEFAULTS.batch_size, show_default=True, type=int)
@click.option("--image-size", default=DEFAULTS.image_size, show_default=True, type=int,
              help="Loader output size (and training size on a GPU).")
@click.option("--train-image-size", default=DEFAULTS.train_image_size, type=int,
              help="Training input size. Default: --image-size on a GPU, "
                   f"{suite.CPU_TRAIN_IMAGE_SIZE} on a CPU.")
@click.option("--width", default=DEFAULTS.width, type=float,
              help="VGG19 width multiplier for training. Default: 1 on a GPU, "
                   f"{suite.CPU_WIDTH} on a CPU.")
@click.option("--steps", default=DEFAULTS.steps, type=int,
              help=f"Timed training steps per repeat. Default: {suite.GPU_STEPS} on a GPU, "
                   f"{suite.CPU_STEPS} on a CPU.")
@click.option("--warmup", default=DEFAULTS.warmup, show_default=True, type=int,
              help="Untimed training steps before timing.")
@click.option("--repeats", default=DEFAULTS.repeats, show_default=True, type=int,
              help="Timed repeats (loader passes, training step groups); median and best.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Where to write the JSON. Default: runs/bench-<time>.json; '-' "
                   "prints it as one line on stdout (the tables go to stderr).")
def bench(data: Path | None, what: str, loader_kinds: str, precisions: str, batch_size: int,
          image_size: int, train_image_size: int, width: float, steps: int, warmup: int,
          repeats: int, json_path: Path | None) -> None:
    """Measure loaders and training speed on this machine.

    Warm-up is never timed; every figure is the median over repeats, with the best
    beside it. With no options it runs in about a minute on a laptop CPU: loaders at
    full size on the built-in sample, training on a width-reduced VGG19 (say --width 1
    --train-image-size 224 for the real model).
    """
    from rich.console import Console

    from fastfood.benchmark import report
    from fastfood.paths import runs_dir
    from fastfood.quiet import import_tensorflow_quietly

    settings = suite.BenchSettings(
        data=str(data) if data else "", what=_csv(what, "--what"),
        loaders=_csv(loader_kinds, "--loaders"),
        precisions=_csv(precisions, "--precision") if precisions else (),
        batch_size=batch_size, image_size=image_size, train_image_size=train_image_size,
        width=width, steps=steps, warmup=warmup, repeats=repeats,
    )
    import_tensorflow_quietly()  # only now: a mistyped flag or value answered without it
    with answers_only() as out:  # native libraries' chatter goes to stderr
        to_stdout = json_path == Path("-")
        # The table goes where the answer goes, or to stderr when stdout carries the JSON.
        console = Console(file=sys.stderr if to_stdout else out)
        with console.status("benchmarking") as status:
            def progress(msg: str) -> None:
                status.update(f"benchmarking: {msg}")
                if not console.is_terminal:  # no spinner in a log: say where we are instead
                    click.echo(f"[bench] {msg}", err=True)

            result = suite.run(settings, progress=progress)
        report.print_report(result, console)
        if to_stdout:
            click.echo(json.dumps(result), file=out)
            return
        path = json_path or runs_dir() / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
        report.write_json(result, path)
        console.print(f"wrote {path} ({result['wall_s']} s)")
