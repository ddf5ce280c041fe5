"""Self-contained HTML reports: one file, inline CSS, images as base64 JPEG thumbnails.

The pieces evaluate's report and the data audit's report are both made of (headline
figures, tables, a gallery of image cards, a heat-map matrix, inline bars), so the two look
alike and each piece is written once. No script, no font, no stylesheet or image from
anywhere else: the page's Content-Security-Policy forbids every fetch but `data:` images,
so a report mailed around or opened years later shows the same thing, and opening it
sends nothing anywhere. Every text that comes from data (file and class names) is escaped.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --bg: #f6f4f1; --card: #fff; --ink: #1f2328; --muted: #6b7280; --line: #e7e2db;
        --good: #1a7f37; --bad: #b42318; --accent: #c2410c; --bar: #d6cfc5; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 26px 22px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; letter-spacing: -.01em; }
h2 { font-size: 17px; margin: 30px 0 10px; }
.sub, .note { color: var(--muted); font-size: 12.5px; }
.note { margin: -4px 0 10px; max-width: 860px; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 18px 0 6px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
        padding: 10px 14px; min-width: 128px; }
.stat .v { font-size: 21px; font-weight: 700; }
.stat .k { color: var(--muted); font-size: 12px; }
.stat.warn .v { color: var(--bad); }
table { border-collapse: collapse; background: var(--card); border: 1px solid var(--line);
        border-radius: 10px; overflow: hidden; font-size: 13px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: #efebe5; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:last-child td { border-bottom: none; }
td.low { color: var(--bad); font-weight: 600; }
.wrap { overflow-x: auto; max-width: 100%; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(172px, 1fr));
           gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
        overflow: hidden; font-size: 12.5px; }
.card img, .card .noimg { display: block; width: 100%; aspect-ratio: 1; object-fit: cover;
                          background: #e9e4dd; }
.card .noimg { display: flex; align-items: center; justify-content: center;
               color: var(--muted); }
.card .body { padding: 7px 9px 9px; }
.card .file { color: var(--muted); font-size: 11.5px; overflow-wrap: anywhere; }
.card .t { color: var(--good); } .card .p { color: var(--bad); }
.card .line { display: flex; justify-content: space-between; gap: 6px; }
.card .line span { min-width: 0; overflow-wrap: anywhere; }
.card .line b { flex-shrink: 0; font-variant-numeric: tabular-nums; }
.group { display: flex; flex-wrap: wrap; gap: 8px; background: var(--card);
         border: 1px solid var(--line); border-radius: 12px; padding: 10px; margin: 0 0 10px; }
.group .card { width: 150px; }
.group .head { width: 100%; font-weight: 600; }
.matrix td { padding: 0; width: 26px; height: 22px; text-align: center; font-size: 11px;
             border: 1px solid #fff; font-variant-numeric: tabular-nums; }
.matrix.small td { width: 9px; height: 9px; font-size: 0; }
.matrix th { font-size: 11px; font-weight: 500; padding: 2px 6px; background: none; }
.matrix th.col { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
                 height: 120px; padding: 4px 2px; }
.bar { display: inline-block; height: 9px; background: var(--accent); border-radius: 5px;
       vertical-align: middle; }
.track { display: inline-block; width: 120px; background: #f0ece6; border-radius: 5px;
         height: 9px; margin-right: 8px; vertical-align: middle; }
code { background: #ece7e0; border-radius: 5px; padding: 1px 5px; font-size: 12px; }
footer { color: var(--muted); font-size: 12px; margin-top: 30px; }
"""


def esc(text: object) -> str:
    """Text for HTML (quotes too, so it is safe inside an attribute)."""
    return html.escape(str(text), quote=True)


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{100 * value:.{digits}f}%"


@dataclass(frozen=True)
class Cell:
    """A table cell: text (escaped) or markup (`raw`, trusted), right-aligned when numeric."""

    text: str = ""
    numeric: bool = False
    raw: bool = False
    low: bool = False  # shown as a warning (red)
    title: str = ""

    def render(self, tag: str = "td") -> str:
        classes = " ".join(c for c, on in (("num", self.numeric), ("low", self.low)) if on)
        attrs = (f' class="{classes}"' if classes else "") + \
            (f' title="{esc(self.title)}"' if self.title else "")
        return f"<{tag}{attrs}>{self.text if self.raw else esc(self.text)}</{tag}>"


def num(value: object, *, low: bool = False) -> Cell:
    return Cell(str(value), numeric=True, low=low)


def table(headers: Sequence[str | Cell], rows: Iterable[Sequence[str | Cell]], *,
          table_id: str = "", css_class: str = "") -> str:
    """A table; a plain string cell is escaped text."""
    def cell(c: str | Cell, tag: str) -> str:
        return (c if isinstance(c, Cell) else Cell(c)).render(tag)

    head = "".join(cell(h, "th") for h in headers)
    body = "".join("<tr>" + "".join(cell(c, "td") for c in row) + "</tr>" for row in rows)
    attrs = (f' id="{esc(table_id)}"' if table_id else "") + \
        (f' class="{esc(css_class)}"' if css_class else "")
    return f'<div class="wrap"><table{attrs}><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></div>"


def bar(value: float, *, width_px: int = 120) -> str:
    """An inline bar for a value in [0, 1] (class balance, calibration bins)."""
    share = max(0.0, min(1.0, float(value)))
    return (f'<span class="track" style="width:{width_px}px"><span class="bar" '
            f'style="width:{share * width_px:.1f}px"></span></span>')


@dataclass(frozen=True)
class Card:
    """One image of a gallery: its thumbnail (a data: URI or None), lines of text under it.

    `lines` are (css class, label, value) rows; `data` become data-* attributes, which the
    tests (and anyone scripting over a saved report) can read back.
    """

    thumb: str | None
    file: str
    lines: tuple[tuple[str, str, str], ...] = ()
    data: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        attrs = "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in self.data.items())
        image = (f'<img src="{self.thumb}" alt="{esc(self.file)}">'
                 if self.thumb else '<div class="noimg">no preview</div>')
        rows = "".join(f'<div class="line {esc(cls)}"><span>{esc(label)}</span>'
                       f"<b>{esc(value)}</b></div>" for cls, label, value in self.lines)
        return (f'<figure class="card"{attrs} style="margin:0">{image}<div class="body">'
                f'{rows}<div class="file">{esc(self.file)}</div></div></figure>')


def gallery(cards: Sequence[Card], *, gallery_id: str = "", empty: str = "none") -> str:
    if not cards:
        return f'<p class="note">{esc(empty)}</p>'
    attrs = f' id="{esc(gallery_id)}"' if gallery_id else ""
    return f'<div class="gallery"{attrs}>' + "".join(c.render() for c in cards) + "</div>"


def group(head: str, cards: Sequence[Card], *, data: dict[str, str] | None = None) -> str:
    """Cards shown side by side under a heading: one cluster of duplicates, say."""
    attrs = "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in (data or {}).items())
    return (f'<div class="group"{attrs}><div class="head">{esc(head)}</div>'
            + "".join(c.render() for c in cards) + "</div>")


def matrix(counts: Sequence[Sequence[int]], labels: Sequence[str], *,
           matrix_id: str = "confusion") -> str:
    """A confusion matrix as a heat-map table: rows true class, columns predicted, colour by
    the share of the row (green on the diagonal, red off it), the count in each cell and in
    its tooltip. Past 30 classes the cells shrink and the counts are tooltips only."""
    n = len(labels)
    small = n > 30
    head = '<tr><th></th>' + "".join(
        f'<th class="col" title="{esc(lab)}">{"" if small else esc(lab)}</th>'
        for lab in labels) + "</tr>"
    rows = []
    for t, row in enumerate(counts):
        total = sum(int(v) for v in row) or 1
        cells = []
        for p, value in enumerate(row):
            value = int(value)
            share = value / total
            if value == 0:
                style = ""
            elif t == p:
                style = f' style="background:rgba(26,127,55,{0.12 + 0.88 * share:.3f});' \
                        f'color:{"#fff" if share > .55 else "inherit"}"'
            else:
                style = f' style="background:rgba(194,65,12,{0.15 + 0.85 * share:.3f});' \
                        f'color:{"#fff" if share > .55 else "inherit"}"'
            tip = f"{labels[t]} -> {labels[p]}: {value} ({100 * share:.1f}% of {labels[t]})"
            cells.append(f'<td{style} title="{esc(tip)}" data-count="{value}">'
                         f'{value if value and not small else ""}</td>')
        rows.append(f'<tr><th title="{esc(labels[t])}">{"" if small else esc(labels[t])}'
                    f"</th>{''.join(cells)}</tr>")
    css = "matrix small" if small else "matrix"
    return (f'<div class="wrap"><table id="{esc(matrix_id)}" class="{css}"><thead>{head}'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div>')


@dataclass
class Page:
    """A report page: a title, headline figures, then sections in order."""

    title: str
    subtitle: str = ""
    parts: list[str] = field(default_factory=list)

    def stats(self, items: Sequence[tuple[str, str] | tuple[str, str, bool]]) -> None:
        """Headline figures: (label, value[, warn])."""
        cards = []
        for item in items:
            label, value = item[0], item[1]
            warn = len(item) > 2 and bool(item[2])  # type: ignore[misc]
            cards.append(f'<div class="stat{" warn" if warn else ""}"><div class="v">'
                         f'{esc(value)}</div><div class="k">{esc(label)}</div></div>')
        self.parts.append(f'<div class="stats">{"".join(cards)}</div>')

    def section(self, title: str, body: str, *, note: str = "", section_id: str = "") -> None:
        """A heading, an optional note (escaped text) and a body (trusted markup)."""
        attrs = f' id="{esc(section_id)}"' if section_id else ""
        note_html = f'<p class="note">{esc(note)}</p>' if note else ""
        self.parts.append(f"<section{attrs}><h2>{esc(title)}</h2>{note_html}{body}</section>")

    def render(self) -> str:
        made = time.strftime("%Y-%m-%d %H:%M")
        return (
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{esc(self.title)}</h1><div class=\"sub\">{esc(self.subtitle)}</div>"
            + "".join(self.parts)
            + f"<footer>Made by fastfood on {esc(made)}. One self-contained file: it loads "
              "nothing from anywhere.</footer></main></body></html>\n"
        )


def write(page: Page, path: str) -> None:
    """Write the page atomically (a temp file, then a rename)."""
    import os
    from pathlib import Path

    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.write_text(page.render(), encoding="utf-8")
    os.replace(tmp, target)
