"""The `fastfood` command: a click group whose subcommands live one per file.

Commands stay thin (parse, build config, call the library) and import TensorFlow or DALI
only inside their bodies, so `fastfood --help` never pays for them. Every FastfoodError
becomes one line on stderr and exit code 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import click

from fastfood.errors import FastfoodError

COMMANDS = {
    "sample-data": "fastfood.cli.sample_data:sample_data",
    "data": "fastfood.cli.data:data",
    "pack": "fastfood.cli.pack:pack",
    "train": "fastfood.cli.train:train",
    "lr-find": "fastfood.cli.lr_find:lr_find",
    "predict": "fastfood.cli.predict:predict",
    "evaluate": "fastfood.cli.evaluate:evaluate",
    "calibrate": "fastfood.cli.calibrate:calibrate",
    "audit": "fastfood.cli.audit:audit",
    "export": "fastfood.cli.export:export",
    "serve": "fastfood.cli.serve:serve",
    "bench": "fastfood.cli.bench:bench",
    "doctor": "fastfood.cli.doctor:doctor",
}

# No command module imports TensorFlow at import time: click parses the whole line first,
# so a usage error answers at once, and each command imports TensorFlow (quietly, see
# fastfood.quiet) only after its arguments are checked.

# Commands whose process exits right after the answer: skips ~1 s of TensorFlow teardown.
FAST_EXIT = {"predict"}

HELP = {
    "sample-data": "Write the built-in synthetic sample dataset (Food-101 layout).",
    "data": "Download a public dataset (food101): resumable, md5-checked.",
    "pack": "Pack a dataset into TFRecord shards (with DALI indexes) for fast reading.",
    "train": "Fine-tune VGG19 on a dataset.",
    "lr-find": "Suggest a learning rate: a short LR sweep on the run's own data and model.",
    "predict": "Classify images with a trained run.",
    "evaluate": "Accuracy of a run on a split, and where it goes wrong (CSV, HTML report).",
    "calibrate": "Fit a run's softmax temperature on its val split (honest confidence).",
    "audit": "Check a dataset: duplicates, leaks between splits, likely wrong labels, odd files.",
    "export": "Export a run (SavedModel, TFLite float/int8, ONNX), checked against the run.",
    "serve": "Serve a run: a web page to try it and an HTTP API (TF Serving compatible).",
    "bench": "Measure loaders and training speed on this machine.",
    "doctor": "Check the TF, CUDA, XLA and DALI setup; one fix per problem.",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = __import__(module_name, fromlist=[attr])
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table above, so the group's --help imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, HELP[name]) for name in COMMANDS])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="fastfood")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """fastfood: fine-tune an ImageNet VGG19 on your photos, fast."""
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the group, turn FastfoodError into exit code 2."""
    from fastfood import gpu_memory

    gpu_memory.request()  # first thing: whatever imports TensorFlow later finds it set
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # a group option, but accepted anywhere on the line (as this check implies)
        args = ["--debug", *(a for a in args if a != "--debug")]
    command = next((a for a in args if not a.startswith("-")), None)
    try:
        cli.main(args=args, prog_name="fastfood", standalone_mode=False)
        if argv is None and command in FAST_EXIT:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    except FastfoodError as err:
        if debug:
            raise
        click.echo(f"fastfood: error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("fastfood: aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)

