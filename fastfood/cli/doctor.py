"""`fastfood doctor`: check this machine's TensorFlow, CUDA, XLA and DALI setup for fastfood."""

from __future__ import annotations

import json
import sys

import click


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object instead of the report.")
def doctor(as_json: bool) -> None:
    """Check this machine's TensorFlow, CUDA, XLA and DALI setup for fastfood.

    Reports versions, the GPUs TensorFlow sees, whether XLA finds ptxas and libdevice,
    what --loader/--precision/--xla auto would pick here and why, and one line with the
    fix for each problem. Exit code 1 when it finds a problem (warnings alone: 0).
    """
    from fastfood import doctor as checks  # imports TensorFlow and DALI: only when run

    facts = checks.collect()
    diagnosis = checks.diagnose(facts)
    if as_json:
        click.echo(json.dumps(checks.to_json(facts, diagnosis), indent=2))
    else:
        click.echo(checks.render(facts, diagnosis))
    if diagnosis.problems:
        sys.exit(1)  # not ctx.exit: fastfood's main() runs click outside standalone mode
