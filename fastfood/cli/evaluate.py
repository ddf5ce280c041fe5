"""`fastfood evaluate` (not built yet)."""

import click

from fastfood.cli import not_built


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def evaluate(args: tuple[str, ...]) -> None:
    """Not built yet."""
    not_built("evaluate")
