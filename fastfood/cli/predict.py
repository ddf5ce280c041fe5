"""`fastfood predict IMG_OR_DIR...`: top-k classes of image files with a trained run.

Arguments are checked (paths exist, the run directory is a run, --top-k >= 1) before
TensorFlow is imported, so a typo fails in a fraction of a second with exit code 2.
Exit code 1 when some file could not be read or decoded (it is named, the others answered).
stdout carries the answers alone (see ``fastfood.cli.stdout``): with --json, one JSON object
per line, whatever DALI, TensorFlow or libjpeg print.
Set FASTFOOD_TIMING=1 for a phase-by-phase timing line on stderr (benchmarks/predict.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from fastfood.cli.options import precision_option
from fastfood.cli.stdout import answers_only
from fastfood.config import FILE_KINDS
from fastfood.predict import DEFAULT_BATCH_SIZE, DEFAULT_TOP_K


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="IMG_OR_DIR...")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Run to use (default: the newest under runs/).")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="A checkpoint prefix inside a run (e.g. runs/x/ckpt/ckpt-300) instead of "
                   "the run's best/final weights.")
@click.option("--top-k", type=int, default=DEFAULT_TOP_K, show_default=True,
              help="Classes per file.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line: {file, top_k: [{class, name, index, prob}], "
                   "precision (fp32, bf16 or fp16)} or {file, error}.")
@click.option("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, show_default=True,
              help="Images per forward pass.")
@click.option("--min-confidence", type=float, default=None,
              help="Answer 'unknown' when the top (calibrated) probability is under this: "
                   "an 'unknown' line in the text, \"unknown\": true in the JSON (the top-k "
                   "still listed).")
@click.option("--loader", type=click.Choice(FILE_KINDS), default=FILE_KINDS[0], show_default=True,
              help="Input pipeline; auto decodes a handful of files directly and uses "
                   "DALI (when installed) or tf.data for more.")
@precision_option
def predict(paths: tuple[str, ...], run_dir: Path | None, model_path: Path | None, top_k: int,
            as_json: bool, batch_size: int, loader: str, min_confidence: float | None,
            precision: str) -> None:
    """Classify JPEG/PNG files and folders (searched recursively) with a trained run."""
    from fastfood.phases import PhaseTimer

    timer = PhaseTimer()
    timer.note("tensorflow_preloaded", "tensorflow" in sys.modules)
    from fastfood.errors import FastfoodError
    from fastfood.predict import Predictor, check_min_confidence, check_top_k, format_text
    from fastfood.inference.batches import DIRECT_MAX
    from fastfood.inference.files import collect_images
    from fastfood.inference.runs import readahead_weights, resolve_run_dir

    check_top_k(top_k)
    check_min_confidence(min_confidence)
    if batch_size < 1:
        raise FastfoodError(f"--batch-size must be >= 1, got {batch_size}")
    files = collect_images(paths)
    if not files:
        raise FastfoodError(f"no .jpg/.jpeg/.png files in {', '.join(paths)}")
    run = resolve_run_dir(run_dir, model_path)  # fail fast, before TensorFlow is imported
    with answers_only() as out:  # native libraries' chatter goes to stderr
        if loader == "dali":
            from fastfood.loaders import resolve_kind

            resolve_kind(loader)  # a one-line error now if the DALI plugin does not import
        readahead_weights(run)
        if len(files) <= DIRECT_MAX and "tensorflow" not in sys.modules:
            # A handful of images: TF's own (Eigen) kernels. oneDNN's first call creates its
            # primitives and reorders the weights, which costs a cold batch-1 forward about a
            # third more CPU (0.8 vs 1.3 s, full width); it wins only on batches. The switch
            # is read when TensorFlow loads, so it can only be made here; a user's setting
            # stands.
            os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

        predictor = Predictor.load(run_dir, model_path, timer=timer, precision=precision,
                                   images=len(files))
        click.echo(predictor.precision.line(), err=True)
        failed = 0
        for prediction in predictor.predict_files(files, top_k=top_k, batch_size=batch_size,
                                                  loader=loader, timer=timer,
                                                  min_confidence=min_confidence):
            failed += prediction.error is not None
            with timer.phase("output"):
                if as_json:
                    answer = prediction.to_json()
                    if prediction.error is None:  # what computed this answer
                        answer["precision"] = predictor.precision.name
                    click.echo(json.dumps(answer), file=out)
                else:
                    click.echo(format_text(prediction), file=out)
    if failed and not as_json:
        click.echo(f"fastfood: {failed} of {len(files)} files could not be classified",
                   err=True)
    timer.report()
    if failed:
        sys.exit(1)  # not click's Exit: the group runs click with standalone_mode=False
