"""audit.html: the audit's findings as one self-contained page (fastfood.report.html)."""

from __future__ import annotations

import os
from pathlib import Path

from fastfood.audit.audit import Audit
from fastfood.data.duplicates import Cluster
from fastfood.report import html
from fastfood.report.html import Card, Cell, num, pct
from fastfood.report.thumbs import thumbnail

#: At most this many clusters and cards per section (the JSON lists them all).
SHOWN = 60


def build(a: Audit) -> html.Page:
    s = a.to_json()["summary"]
    page = html.Page("fastfood audit", f"{a.root} · {a.layout} · {len(a.entries)} images in "
                     f"{len(a.classes)} classes" + (f" · run {a.run_dir}" if a.run_dir else ""))
    imbalance = a.imbalance()
    page.stats([
        ("leaks between splits", str(s["leaks"]), s["leaks"] > 0),
        ("label conflicts", str(s["label_conflicts"]), s["label_conflicts"] > 0),
        ("exact duplicate clusters", str(s["exact_clusters"])),
        ("near duplicate clusters", str(s["near_clusters"])),
        ("likely mislabeled", str(s["likely_mislabeled"]) if a.run_dir else "needs --run-dir",
         s["likely_mislabeled"] > 0),
        ("odd files", str(s["odd_files"])),
        ("largest / smallest class", f"{imbalance:.1f}x" if imbalance else "-"),
    ])
    for note in a.notes:
        page.parts.append(f'<p class="note">{html.esc(note)}</p>')
    page.section("Leaks between splits", _clusters(a, a.leaks, "leak"), section_id="leaks",
                 note="The same image (same bytes, or nearly the same pixels) in two splits: "
                      "val or test then measures memory. Each box is one cluster.")
    page.section("Label conflicts", _clusters(a, a.conflicts, "conflict"),
                 section_id="conflicts", note="The same image under two classes.")
    inside = [c for c in a.clusters if c not in a.leaks and c not in a.conflicts]
    page.section("Other duplicates", _clusters(a, inside, "duplicate"), section_id="duplicates",
                 note="Within one split and one class: harmless to the measurement, but "
                      "they weigh those images double in training.")
    if a.run_dir:
        page.section("Likely mislabeled", _mislabeled(a), section_id="mislabeled",
                     note=f"Files the model gives another class with at least "
                          f"{pct(a.settings.get('mislabel_confidence'))} (calibrated) "
                          "probability, most confident first. In train the model has seen "
                          "their label, so a confident disagreement there weighs more.")
    page.section("Class balance", _balance(a), section_id="balance")
    page.section("Odd files", _odd(a), section_id="odd",
                 note="Read from the file headers: unusable files (the loaders skip them), "
                      "tiny, huge, oddly shaped, not RGB, or a format other than the name "
                      "says.")
    st = a.settings
    page.section("How this was checked", f'<p class="note">Split: val fraction '
                 f'{html.esc(st["val_fraction"])}, seed {html.esc(st["split_seed"])}, '
                 f'duplicates grouped: {html.esc(st["group_duplicates"])} (class folders '
                 f'only). Near duplicates: pHash within {html.esc(st["phash_max_distance"])} '
                 'of 64 bits' + (f', or centred fc7 embeddings with cosine at least '
                                 f'{html.esc(st["embedding_similarity"])}'
                                 if "embedding_similarity" in st else "") + ".</p>")
    return page


def write_report(a: Audit, path: str | os.PathLike[str]) -> Path:
    html.write(build(a), os.fspath(path))
    return Path(path)


def _clusters(a: Audit, found: list[Cluster], kind: str) -> str:
    if not found:
        return '<p class="note">None found.</p>'
    parts = []
    for c in found[:SHOWN]:
        cards = []
        for i in c.members[:8]:
            e = a.entries[i]
            cards.append(Card(thumbnail(e.file), os.path.relpath(e.file, a.root),
                              (("t", a.display_names[e.label], e.split),),
                              {"file": e.file, "split": e.split, "class": a.classes[e.label]}))
        if c.exact:
            how = "same bytes"
        elif c.found_by == ("embedding",):
            how = "alike to the network only (no pixel hash agrees): check by eye"
        else:
            how = f"near duplicates (found by {', '.join(c.found_by)}; pHash distance up to " \
                  f"{c.max_distance})"
        more = f", {len(c.members) - 8} more in the JSON" if len(c.members) > 8 else ""
        parts.append(html.group(f"{len(c.members)} files, {how}; splits "
                                f"{', '.join(a.cluster_splits(c))}{more}", cards,
                                data={"kind": kind, "size": str(len(c.members))}))
    if len(found) > SHOWN:
        parts.append(f'<p class="note">{len(found) - SHOWN} more in audit.json.</p>')
    return "".join(parts)


def _mislabeled(a: Audit) -> str:
    cards = []
    for m in a.mislabeled[:SHOWN]:
        e = a.entries[m.entry]
        cards.append(Card(thumbnail(e.file), os.path.relpath(e.file, a.root), (
            ("", f"labelled {a.display_names[e.label]}", pct(m.p_label)),
            ("p", f"model: {a.display_names[m.predicted]}", pct(m.p_predicted)),
            ("", "split", e.split)),
            {"file": e.file, "label": a.classes[e.label], "predicted": a.classes[m.predicted]}))
    return html.gallery(cards, gallery_id="mislabeled-files", empty="None found.")


def _balance(a: Audit) -> str:
    balance = a.balance()
    splits = list(balance)
    largest = max((n for counts in balance.values() for n in counts.values()), default=1) or 1
    rows = []
    for k, cls in enumerate(a.classes):
        cells: list[str | Cell] = [Cell(a.display_names[k], title=cls)]
        for s in splits:
            n = balance[s][cls]
            cells.append(Cell(f"{html.bar(n / largest, width_px=90)}{n}", raw=True,
                              low=n == 0))
        rows.append(cells)
    return html.table(["class", *splits], rows, table_id="balance-table")


def _odd(a: Audit) -> str:
    rows = []
    for i in a.odd[:500]:
        e, f = a.entries[i], a.facts[i]
        rows.append([os.path.relpath(e.file, a.root), e.split,
                     num(f"{f.width}x{f.height}" if f.width else "-"), "; ".join(f.problems)])
    if not rows:
        return '<p class="note">None found.</p>'
    return html.table(["file", "split", Cell("size", numeric=True), "what"], rows,
                      table_id="odd-files")
