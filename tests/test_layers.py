"""Imports point one way: down the layers of the package, never up or sideways.

The layers, lowest first:
  0 the neutral modules: errors, paths, quiet, config, phases, rundir, machine, scores, cpus, gpu_memory, and the
    data layer
  1 loaders, model (they do not import each other)
  2 train, inference (they do not import each other)
  3 the users of a run: predict, evaluate, export, calibrate, server, doctor, audit,
    report; benchmark above them (nothing but the CLI imports measurement code)
  4 cli
Every import in fastfood/ is read from the source (the AST, function-local imports
included, as test_reliability_containment reads it), so the test fails on the first
upward import however it is spelled.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fastfood"

RANKS = {
    "errors": 0, "paths": 0, "quiet": 0, "config": 0, "phases": 0, "rundir": 0, "machine": 0,
    "scores": 0, "cpus": 0, "gpu_memory": 0,
    "data": 0,
    "loaders": 1, "model": 1,
    "train": 2, "inference": 2,
    "predict": 3, "evaluate": 3, "export": 3, "calibrate": 3, "server": 3, "doctor": 3,
    "audit": 3, "report": 3,
    "benchmark": 3.5,
    "cli": 4,
}
#: Peers that must not import each other although they share a rank.
APART = {frozenset({"loaders", "model"}), frozenset({"train", "inference"})}


def _unit(module: str) -> str:
    """'fastfood.train.loop' -> 'train'; the package itself is ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")[: -node.level]
                base = ".".join(package + ([base] if base else []))
            names = ([f"{base}.{a.name}" for a in node.names if not a.name.startswith("__")]
                     if base == "fastfood" else [base])
            found += [(node.lineno, name) for name in names]
    return [(line, name) for line, name in found
            if name == "fastfood" or name.startswith("fastfood.")]


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _unit(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        if here not in RANKS:
            if here not in ("__init__", "__main__"):
                bad.append(f"{path.relative_to(PACKAGE.parent)}: not in a layer of this test")
            continue
        for line, name in _imports(path):
            there = _unit(name)
            if there in ("", here):
                continue
            if there not in RANKS:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}, "
                           "which is in no layer")
            elif RANKS[there] > RANKS[here] or frozenset({here, there}) in APART:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports "
                           f"{name} ({there})")
    return bad


def test_imports_point_down_the_layers() -> None:
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path, monkeypatch) -> None:
    """The walk itself: a planted upward import (config -> train) is reported."""
    fake = tmp_path / "fastfood"
    fake.mkdir()
    (fake / "config.py").write_text("def f():\n    from fastfood.train import loop\n")
    (fake / "train").mkdir()
    (fake / "train" / "loop.py").write_text("from fastfood import config\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _violations() == ["fastfood/config.py:2 (config) imports fastfood.train (train)"]
