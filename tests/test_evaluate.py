"""fastfood evaluate: counting, agreement with predict, outputs in the run dir, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from support.cli import run_cli
from support.runs import untrained_run


class FixedForward:
    """Stands in for the model: probabilities looked up from each image's first pixel."""

    def __init__(self, table: dict[int, np.ndarray]) -> None:
        self.table = table

    temperature = 1.0

    def __call__(self, images, *, traced: bool = True) -> np.ndarray:
        keys = images.numpy()[:, 0, 0, 0].astype(int)
        return np.stack([self.table[k] for k in keys])

    def outputs(self, images, *, traced: bool = True) -> tuple[np.ndarray, np.ndarray]:
        probs = self(images)
        return np.log(probs), probs  # log p: logits up to a per-row constant


def test_count_confusion_top1_top5_exactly(tmp_path: Path) -> None:
    """Known probabilities per image -> known confusion matrix and top-5 hits."""
    from PIL import Image

    from fastfood.evaluate import count

    num_classes = 7
    rng = np.random.default_rng(1)
    files, labels, table = [], [], {}
    expected = np.zeros((num_classes, num_classes), dtype=np.int64)
    expected_top5 = 0
    for i in range(11):
        shade = 20 * i  # first pixel survives decode + resize of a flat image
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (16, 16), (shade, 0, 0)).save(path)
        probs = rng.dirichlet(np.ones(num_classes)).astype(np.float32)
        label = int(rng.integers(num_classes))
        table[shade] = probs
        files.append(str(path))
        labels.append(label)
        order = np.argsort(-probs, kind="stable")
        expected[label, order[0]] += 1
        expected_top5 += label in order[:5]
    (tmp_path / "empty.png").write_bytes(b"")
    files.insert(3, str(tmp_path / "empty.png"))
    labels.insert(3, 0)
    confusion, top5, skipped = count(FixedForward(table), files, labels,
                                     num_classes=num_classes, image_size=8, batch_size=4,
                                     loader="tfdata")
    np.testing.assert_array_equal(confusion, expected)
    assert top5 == expected_top5
    assert skipped == [(str(tmp_path / "empty.png"), "empty file")]


def test_predict_agrees_with_evaluate(trained_run: Path, sample_dir: Path) -> None:
    """predict over the val images gives exactly evaluate's confusion matrix and top-1."""
    from fastfood.data import load
    from fastfood.evaluate import evaluate
    from fastfood.predict import Predictor

    # Both with their defaults: loader auto, the run's batch size (32). The same pixels in
    # the same batches, so even near-ties of a barely trained model break the same way.
    ev = evaluate(trained_run, split="val")
    spec = load(sample_dir)
    assert ev.n == len(spec.val.files) == 120 and not ev.skipped
    predictor = Predictor.load(trained_run)
    confusion = np.zeros_like(ev.confusion)
    for p, label in zip(predictor.predict_files(spec.val.files, top_k=1, batch_size=32),
                        spec.val.labels):
        confusion[label, p.top_k[0].index] += 1
    np.testing.assert_array_equal(confusion, ev.confusion)
    assert ev.top1 == pytest.approx(np.trace(confusion) / 120)
    assert 0.0 <= ev.top1 <= ev.top5 <= 1.0


def test_cli_writes_json_and_png_into_the_run(trained_run: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--json"], capsys)
    assert code == 0, err
    printed = json.loads(out)
    assert {"top1", "top5", "n"} <= set(printed) and printed["n"] == 120
    assert 0.0 <= printed["top1"] <= printed["top5"] <= 1.0
    written = json.loads((trained_run / "eval_val.json").read_text())
    assert written["top1"] == printed["top1"] and len(written["per_class"]) == 8
    assert sum(c["n"] for c in written["per_class"]) == 120
    assert sum(c["correct"] for c in written["per_class"]) == round(printed["top1"] * 120)
    assert (trained_run / "confusion_val.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--split", "train"],
                             capsys)
    assert code == 0, err
    assert "top-1" in out and "Tomato stripes" in out  # the rich table, display names
    assert json.loads((trained_run / "eval_train.json").read_text())["n"] == 480
    assert (trained_run / "confusion_train.png").is_file()


def test_bad_files_are_skipped_and_named(tmp_path: Path, make_food101,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = make_food101({"red": (2, 3), "green": (2, 3)}, size=(24, 20))
    broken = root / "images" / "green" / "003.jpg"
    broken.write_bytes(b"not a jpeg")
    run = untrained_run(tmp_path / "run", ["red", "green"], data_root=str(root))
    code, out, err = run_cli(["evaluate", "--run-dir", str(run), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 5
    assert result["skipped"] == [{"file": str(broken), "error": "not a JPEG or PNG file"}]
    # Two classes: top-5 is "in the top 2", always true.
    assert result["top5"] == 1.0


def test_usage_errors(tmp_path: Path, make_food101, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_food101({"red": (1, 1), "blue": (1, 1)})
    run = untrained_run(tmp_path / "run", ["red", "green"], data_root=str(root))
    for argv, words in [
        (["evaluate", "--run-dir", str(run)], "classes"),
        (["evaluate", "--run-dir", str(tmp_path / "nope")], "does not exist"),
        (["evaluate", "--run-dir", str(run), "--data", str(tmp_path / "nodata")], "nodata"),
    ]:
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and words in err, (argv, err)
