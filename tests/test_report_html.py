"""The evaluation report, parsed: self-contained (no URL but data: images), escaped, and
showing what the Evaluation holds (gallery order, matrix counts, per-class rows)."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.reports import made_evaluation


class Parsed(HTMLParser):
    """Every start tag with its attributes, plus the text inside chosen elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags
                if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def parse(page: str) -> Parsed:
    p = Parsed()
    p.feed(page)
    p.close()
    return p


def test_report_is_self_contained_and_shows_the_evaluation(tmp_path: Path) -> None:
    from fastfood.report.evaluation import GALLERY, build

    ev = made_evaluation(tmp_path)
    page = build(ev).render()
    doc = parse(page)
    policy = doc.find("meta", http_equiv="Content-Security-Policy")
    assert policy and "default-src 'none'" in policy[0]["content"]
    assert not doc.find("script") and not doc.find("link")
    for _, attrs in doc.tags:  # nothing that could fetch: every src is an inline image
        assert "href" not in attrs
        if "src" in attrs:
            assert attrs["src"].startswith("data:image/jpeg;base64,")
    assert "url(" not in page  # nor in the CSS

    cards = doc.find("figure")
    worst = ev.records.top_losses(GALLERY)
    assert len(cards) == min(GALLERY, ev.n) == len(worst)
    for card, i in zip(cards, worst):  # highest loss first, each with both classes
        assert card["data-file"] == ev.records.files[i]
        assert card["data-true"] == ev.classes[ev.records.labels[i]]
        assert card["data-predicted"] == ev.classes[ev.records.predicted[i]]
    losses = [float(c["data-loss"]) for c in cards]
    assert losses == sorted(losses, reverse=True)
    thumb = base64.b64decode(doc.find("img")[0]["src"].split(",", 1)[1])
    assert Image.open(io.BytesIO(thumb)).format == "JPEG"

    cells = [int(a["data-count"]) for a in doc.find("td") if "data-count" in a]
    np.testing.assert_array_equal(np.array(cells).reshape(3, 3), ev.confusion)
    text = " ".join(doc.text)
    for name in ev.display_names:
        assert name in text
    assert "/data/broken.jpg" in text and "--min-confidence" in text


def test_names_from_the_data_are_escaped(tmp_path: Path) -> None:
    from fastfood.report.evaluation import build

    ev = made_evaluation(tmp_path, names=("<script>alert(1)</script>", "b&b", 'say "hi"'))
    page = build(ev).render()
    assert "<script>" not in page and "&lt;script&gt;" in page
    doc = parse(page)
    assert not doc.find("script")


def test_an_empty_evaluation_still_renders(tmp_path: Path) -> None:
    from fastfood.report.evaluation import build

    ev = made_evaluation(tmp_path, n=0)
    page = build(ev).render()
    assert "no images were evaluated" in page


def test_outputs_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install .` has no matplotlib: the PNG is skipped with a reason, the rest written."""
    import sys

    from fastfood.report.outputs import write_outputs

    ev = made_evaluation(tmp_path)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = write_outputs(ev, tmp_path)
    assert isinstance(out["png"], str) and "matplotlib is not installed" in out["png"]
    assert not (tmp_path / "confusion_val.png").exists()
    for kind in ("json", "csv", "html"):
        assert Path(out[kind]).stat().st_size > 0
    rows = (tmp_path / "predictions_val.csv").read_text().splitlines()
    assert rows[0].split(",")[:6] == ["file", "true_class", "predicted_class", "p_true",
                                      "p_predicted", "loss"]
    assert len(rows) == 1 + ev.n
