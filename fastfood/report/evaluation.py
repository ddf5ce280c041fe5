"""report_<split>.html: what `fastfood evaluate` found, as one page a person can read.

Headline figures, then the worst errors as a gallery (each with its true and predicted
class and the probability of each), the most confused pairs, the confusion matrix, the
per-class table, the calibration bins, and what a confidence threshold buys.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastfood import scores
from fastfood.evaluate import Evaluation
from fastfood.report import html
from fastfood.report.html import Card, Cell, num, pct
from fastfood.report.thumbs import thumbnail

#: Cards in the gallery of worst errors.
GALLERY = 24
#: Thresholds shown in the coverage table, beside --min-confidence and the target's.
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)


def build(ev: Evaluation) -> html.Page:
    cs = ev.class_scores
    cal = ev.calibration()
    page = html.Page(f"fastfood evaluate: {ev.split}",
                     f"{ev.run_dir} · weights {ev.checkpoint} · data {ev.data_root} · "
                     f"{ev.n} images" + (f", {len(ev.skipped)} skipped" if ev.skipped else ""))
    figures: list[tuple[str, str] | tuple[str, str, bool]] = [
        ("top-1", pct(ev.top1)), (f"top-{min(5, len(ev.classes))}", pct(ev.top5)),
        ("macro precision", pct(cs.macro_precision)), ("macro recall", pct(cs.macro_recall)),
        ("macro F1", pct(cs.macro_f1)),
    ]
    if cal is not None:
        figures.append((f"ECE at T={cal['temperature']:.2f} (T=1: {pct(cal['ece_uncalibrated'])})",
                        pct(cal["ece"])))
    sel = ev.at_min_confidence()
    if sel is not None:
        figures.append((f"coverage at ≥{sel.threshold:g} (accuracy {pct(sel.accuracy)})",
                        pct(sel.coverage)))
    if ev.skipped:
        figures.append(("files skipped", str(len(ev.skipped)), True))
    page.stats(figures)
    page.section("Worst errors", _gallery(ev), section_id="errors",
                 note="The images with the highest loss: the lowest probability on their true "
                      "class, first. Green: the true class and its probability; red: what the "
                      "model said.")
    page.section("Most confused", _confused(ev), section_id="confused",
                 note="True class → predicted class, by the number of images.")
    page.section("Confusion matrix", html.matrix(ev.confusion.tolist(), ev.display_names),
                 section_id="matrix", note="Rows: true class; columns: predicted. Colour: "
                 "the share of the row (green on the diagonal, red off it).")
    page.section("Per class", _per_class(ev), section_id="classes",
                 note="Precision: of the images predicted as the class, how many are. Recall "
                      "(= the class's top-1): of the class's images, how many are found. "
                      "Red: under 50 %.")
    if cal is not None:
        page.section("Calibration", _calibration(ev), section_id="calibration",
                     note=f"Top-1 probability against accuracy in {cal['bins']} equal-width "
                          "bins (right-closed). ECE is the image-weighted mean gap. "
                          f"Temperature {cal['temperature']:.3f} "
                          f"(NLL {cal['nll_uncalibrated']:.3f} at T=1, {cal['nll']:.3f} here).")
        page.section("Answering only when sure", _coverage(ev), section_id="coverage",
                     note="Images whose top probability is under a threshold are answered "
                          "'unknown' (--min-confidence). Chosen on this split, a threshold is "
                          "optimistic here: pick it on val, check it elsewhere.")
    if ev.skipped:
        page.section("Skipped files", html.table(
            ["file", "why"], [[f, reason] for f, reason in ev.skipped]), section_id="skipped")
    return page


def write_report(ev: Evaluation, path: str | os.PathLike[str]) -> Path:
    html.write(build(ev), os.fspath(path))
    return Path(path)


def _gallery(ev: Evaluation) -> str:
    cards = []
    for row in ev.top_losses(GALLERY):
        right = row["true"] == row["predicted"]
        lines = [("t", f"true: {row['true_name']}", pct(row["p_true"]))]
        if not right:
            lines.append(("p", f"said: {row['predicted_name']}", pct(row["p_predicted"])))
        lines.append(("", "loss", f"{row['loss']:.2f}"))
        cards.append(Card(thumbnail(row["file"]), os.path.basename(row["file"]), tuple(lines),
                          {"file": row["file"], "true": row["true"],
                           "predicted": row["predicted"], "loss": f"{row['loss']:.6g}"}))
    return html.gallery(cards, gallery_id="worst", empty="no images were evaluated")


def _confused(ev: Evaluation) -> str:
    pairs = ev.most_confused()
    if not pairs:
        return '<p class="note">No image was confused with another class.</p>'
    return html.table(
        ["true class", "predicted as", Cell("images", numeric=True),
         Cell("of the true class", numeric=True)],
        [[p["true_name"], p["predicted_name"], num(p["count"]), num(pct(p["share_of_true"]))]
         for p in pairs], table_id="confused-pairs")


def _per_class(ev: Evaluation) -> str:
    cs = ev.class_scores
    rows = []
    for i, name in enumerate(ev.display_names):
        n, correct = int(ev.per_class_n[i]), int(ev.per_class_correct[i])
        precision, recall, f1 = (None if np.isnan(v) else float(v)
                                 for v in (cs.precision[i], cs.recall[i], cs.f1[i]))
        rows.append([Cell(name, title=ev.classes[i]), num(n), num(correct),
                     num(pct(precision), low=precision is not None and precision < 0.5),
                     num(pct(recall), low=recall is not None and recall < 0.5),
                     num(pct(f1))])
    headers = ["class", *(Cell(h, numeric=True)
                          for h in ("images", "correct", "precision", "recall", "F1"))]
    return html.table(headers, rows, table_id="per-class")


def _calibration(ev: Evaluation) -> str:
    r = ev.records
    assert r is not None
    rows = []
    for b in scores.reliability_bins(r.confidence, r.correct):
        rows.append([f"({b.low:.2f}, {b.high:.2f}]", num(b.n),
                     Cell(f"{html.bar(b.confidence)}{pct(b.confidence)}", raw=True),
                     Cell(f"{html.bar(b.accuracy)}{pct(b.accuracy)}", raw=True),
                     num(f"{100 * (b.accuracy - b.confidence):+.1f}")])
    return html.table(["top-1 probability", Cell("images", numeric=True), "mean confidence",
                       "accuracy", Cell("gap (points)", numeric=True)], rows,
                      table_id="reliability")


def _coverage(ev: Evaluation) -> str:
    r = ev.records
    assert r is not None
    chosen = {t: "" for t in THRESHOLDS}
    if ev.min_confidence is not None:
        chosen[ev.min_confidence] = "--min-confidence"
    target = ev.for_target()
    if target is not None:
        chosen[target.threshold] = f"lowest reaching {pct(ev.target_accuracy)}"
    rows = []
    for t in sorted(chosen):
        s = scores.selective(r.confidence, r.correct, t)
        rows.append([num(f"{t:.4g}"), num(f"{s.answered} / {s.total}"), num(pct(s.coverage)),
                     num(pct(s.accuracy)), chosen[t]])
    body = html.table([Cell("threshold", numeric=True), Cell("answered", numeric=True),
                       Cell("coverage", numeric=True), Cell("accuracy", numeric=True), ""],
                      rows, table_id="thresholds")
    if target is None:
        body += (f'<p class="note">No threshold reaches {pct(ev.target_accuracy)} accuracy '
                 "on this split.</p>")
    return body
