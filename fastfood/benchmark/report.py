"""Showing benchmark results: rich tables on the terminal, JSON on disk, a PNG chart.

The JSON is the record (machine, versions, settings, every repeat); the tables and the
chart are views of it, so they are built from the same dict that is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write `result` as indented JSON (parent folders made), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def _fmt(x: Any, digits: int = 1) -> str:
    if isinstance(x, (int, float)):
        return f"{x:,.{digits}f}"
    return "-" if x is None else str(x)


def _ratio(x: Any) -> str:
    return f"{x:.2f}x" if isinstance(x, (int, float)) else "-"


def _ratio_keys(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Keys like 'train_vs_limit' present in any row, in first-seen order."""
    keys: list[str] = []
    for row in rows.values():
        keys += [k for k in row if "_vs_" in k and k not in keys]
    return keys


def loader_table(result: dict[str, Any], title: str = "Loaders") -> Any:
    """Loader throughput: steady-state img/s (median, best) per mode, and start-up."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("loader", "train img/s", "(best)", "eval img/s", "(best)", "start-up s"):
        table.add_column(col, justify="left" if col == "loader" else "right")
    for name, row in result.get("loaders", {}).items():
        if "error" in row:
            table.add_row(name, f"[red]error: {row['error']}[/red]")
            continue
        train, evl = row.get("train", {}), row.get("eval", {})
        table.add_row(
            name, _fmt(train.get("img_s")), _fmt(train.get("img_s_best")),
            _fmt(evl.get("img_s")), _fmt(evl.get("img_s_best")),
            _fmt(train.get("startup_s_median", evl.get("startup_s_median")), 2),
        )
    return table


def loader_ratio_table(result: dict[str, Any], title: str = "Loader ratios") -> Any | None:
    """Every '<mode>_vs_<reference>' ratio of the loaders, or None when there are none."""
    from rich.table import Table

    rows = result.get("loaders", {})
    keys = _ratio_keys(rows)
    if not keys:
        return None
    table = Table(title=title, title_justify="left")
    table.add_column("loader")
    for key in keys:
        table.add_column(key.replace("_vs_", " vs ").replace("_", " "), justify="right")
    for name, row in rows.items():
        if any(key in row for key in keys):
            table.add_row(name, *[_ratio(row.get(key)) for key in keys])
    return table


def train_table(result: dict[str, Any], section: str = "train", title: str = "Training") -> Any:
    """Training (or predict) throughput per precision/input, with the ratios that matter."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("precision/input", "img/s", "best", "vs synthetic", "vs keras fit", "policy"):
        table.add_column(col, justify="left" if col in ("precision/input", "policy") else "right")
    for name, row in result.get(section, {}).items():
        if "error" in row:
            table.add_row(name, f"[red]error: {row['error']}[/red]")
            continue
        table.add_row(name, _fmt(row.get("img_s")), _fmt(row.get("img_s_best")),
                      _ratio(row.get("ratio_to_synthetic")), _ratio(row.get("ratio_to_keras_fit")),
                      str(row.get("policy", "")))
    return table


def print_report(result: dict[str, Any], console: Any = None) -> None:
    """Machine line, then one table per section present in `result`."""
    from rich.console import Console

    console = console or Console()
    m = result.get("machine", {})
    gpus = ", ".join(g["name"] for g in m.get("gpus", [])) or "no GPU"
    v = m.get("versions", {})
    console.print(
        f"[bold]{m.get('cpu_model', '?')}[/bold], {m.get('cores', '?')} cores, {gpus}; "
        f"TF {v.get('tensorflow', '-')}, Keras {v.get('keras', '-')}, "
        f"DALI {v.get('nvidia-dali', '-')}, Python {v.get('python', '-')}"
    )
    for warning in result.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    labels = result.get("labels", {})
    if result.get("loaders"):
        console.print(loader_table(result, labels.get("loaders", "Loaders")))
        ratios = loader_ratio_table(result)
        if ratios is not None:
            console.print(ratios)
    if result.get("train"):
        console.print(train_table(result, "train", labels.get("train", "Training")))
    if result.get("predict"):
        console.print(train_table(result, "predict", labels.get("predict", "Predict")))
    if result.get("serve"):
        console.print(serve_table(result["serve"], labels.get("serve", "Serve")))
    if result.get("precision"):
        console.print(precision_table(result["precision"], labels.get("precision", "Precision")))


def precision_table(precision: dict[str, Any], title: str = "Precision") -> Any:
    """fp32 against the half type: peak, forward, predict, evaluate, serve, cold predict."""
    from rich.table import Table

    from fastfood.benchmark.precision import summary_rows

    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("measured")
    if "error" in precision:
        table.add_row("error", f"[red]{precision['error']}[/red]")
        return table
    for what, figure in summary_rows(precision):
        table.add_row(what, figure)
    return table


def serve_table(serve: dict[str, Any], title: str = "Serve") -> Any:
    """`fastfood serve` against offline predict, latency, memory, overload (one row each)."""
    from rich.table import Table

    from fastfood.benchmark.serve import summary_rows

    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("measured")
    if "error" in serve:
        table.add_row("error", f"[red]{serve['error']}[/red]")
        return table
    for what, figure in summary_rows(serve):
        table.add_row(what, figure)
    return table


def loader_chart(result: dict[str, Any], path: str | Path, reference: str | None = None,
                 exclude: tuple[str, ...] = ("synthetic",)) -> Path:
    """Horizontal bars of train and eval img/s per loader; `reference` drawn as a line.

    `synthetic` is left out by default: it reads no files, and its bar would squash
    every real loader into the left edge.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(name, row) for name, row in result.get("loaders", {}).items()
            if "error" not in row and name not in exclude]
    names = [name for name, _ in rows]
    train = [row.get("train", {}).get("img_s", 0.0) for _, row in rows]
    evl = [row.get("eval", {}).get("img_s", 0.0) for _, row in rows]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.8))
    ys = range(len(names))
    for offset, values, label in ((-0.2, train, "train mode"), (0.2, evl, "eval mode")):
        bars = ax.barh([y + offset for y in ys], values, height=0.4, label=label)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2)
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    if reference and reference in result.get("loaders", {}):
        ref = result["loaders"][reference].get("eval", {}).get("img_s")
        if ref:
            ax.axvline(ref, color="k", linestyle="--", linewidth=1, label=f"{reference}")
    s = result.get("settings", {})
    m = result.get("machine", {})
    ax.set_xlabel("images/s (median of repeats, steady state)")
    ax.set_title(f"Loaders, {s.get('image_size', '?')} px, batch {s.get('batch_size', '?')}: "
                 f"{m.get('cpu_model', '?')} x{m.get('cores', '?')}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
