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
    assert ev.n == len(spec.val.files) == 48 and not ev.skipped  # 6 of each class's 60
    predictor = Predictor.load(trained_run)
    confusion = np.zeros_like(ev.confusion)
    for p, label in zip(predictor.predict_files(spec.val.files, top_k=1, batch_size=32),
                        spec.val.labels):
        confusion[label, p.top_k[0].index] += 1
    np.testing.assert_array_equal(confusion, ev.confusion)
    assert ev.top1 == pytest.approx(np.trace(confusion) / 48)
    assert 0.0 <= ev.top1 <= ev.top5 <= 1.0


def test_cli_writes_json_and_png_into_the_run(trained_run: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--json"], capsys)
    assert code == 0, err
    printed = json.loads(out)
    assert {"top1", "top5", "n"} <= set(printed) and printed["n"] == 48
    assert 0.0 <= printed["top1"] <= printed["top5"] <= 1.0
    written = json.loads((trained_run / "eval_val.json").read_text())
    assert written["top1"] == printed["top1"] and len(written["per_class"]) == 8
    assert sum(c["n"] for c in written["per_class"]) == 48
    assert sum(c["correct"] for c in written["per_class"]) == round(printed["top1"] * 48)
    assert (trained_run / "confusion_val.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--split", "train"],
                             capsys)
    assert code == 0, err
    assert "top-1" in out and "Tomato stripes" in out  # the rich table, display names
    assert json.loads((trained_run / "eval_train.json").read_text())["n"] == 432
    assert (trained_run / "confusion_train.png").is_file()

    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--split", "test",
                              "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["n"] == 120 and json.loads(out)["split"] == "test"  # test.txt
    assert json.loads((trained_run / "eval_test.json").read_text())["n"] == 120


def test_splits_are_the_runs_own(tmp_path: Path, make_food101) -> None:
    """val, test and train as the run was trained with; a run saved before the test split
    (no val_from in config.json) still means Food-101's test.txt by 'val'."""
    from fastfood import data
    from fastfood.evaluate import split_files
    from fastfood.rundir import read_info

    root = make_food101({"red": (10, 2), "blue": (10, 3)})
    run = untrained_run(tmp_path / "run", ["red", "blue"], data_root=str(root))
    spec = data.load(root)
    info = read_info(run)
    for split in ("val", "test", "train"):
        _, files, labels = split_files(info, None, split)
        assert (files, labels) == (getattr(spec, split).files, getattr(spec, split).labels)
    assert not set(split_files(info, None, "val")[1]) & set(spec.test.files)

    config = json.loads((run / "config.json").read_text())
    del config["data"]["val_from"], config["data"]["test_fraction"]
    (run / "config.json").write_text(json.dumps(config))
    old = read_info(run)
    assert split_files(old, None, "val")[1] == spec.test.files
    assert split_files(old, None, "train")[1] == data.load(root, val_fraction=0).train.files


def test_bad_files_are_skipped_and_named(tmp_path: Path, make_food101,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = make_food101({"red": (2, 3), "green": (2, 3)}, size=(24, 20))
    broken = root / "images" / "green" / "003.jpg"
    broken.write_bytes(b"not a jpeg")
    run = untrained_run(tmp_path / "run", ["red", "green"], data_root=str(root))
    code, out, err = run_cli(["evaluate", "--run-dir", str(run), "--split", "test", "--json"],
                             capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 5  # test.txt: 6 images, one broken
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


def _event_tags(folder: Path) -> dict[str, str]:
    """{tag: plugin name} of every summary in a TensorBoard folder."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    tags = {}
    for path in folder.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags[value.tag] = value.metadata.plugin_data.plugin_name
    return tags


def test_cli_says_what_is_wrong(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CSV, the JSON lists, the HTML report and TensorBoard agree with each other."""
    import csv

    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--json",
                              "--min-confidence", "0.3"], capsys)
    assert code == 0, err
    result = json.loads(out)
    with open(trained_run / "predictions_val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == result["n"] == 48  # the sample's val: 6 of each class's train.txt
    assert sum(int(r["correct"]) for r in rows) == round(result["top1"] * 48)
    for r in rows:
        assert float(r["p_predicted"]) >= float(r["p_true"]) - 1e-6
        assert float(r["loss"]) == pytest.approx(-np.log(float(r["p_true"])), rel=1e-4, abs=1e-5)
        assert r["unknown"] == str(int(float(r["p_predicted"]) < 0.3))
        assert (r["true_class"] == r["predicted_class"]) == (r["correct"] == "1")
    answered = sum(float(r["p_predicted"]) >= 0.3 for r in rows)
    assert result["min_confidence"]["answered"] == answered
    assert result["min_confidence"]["coverage"] == pytest.approx(answered / 48)

    by_loss = sorted(rows, key=lambda r: -float(r["loss"]))
    assert [t["file"] for t in result["top_losses"][:5]] == [r["file"] for r in by_loss[:5]]
    counts = [p["count"] for p in result["most_confused"]]
    assert counts == sorted(counts, reverse=True)
    pairs = {}
    for r in rows:
        if r["true_class"] != r["predicted_class"]:
            key = (r["true_class"], r["predicted_class"])
            pairs[key] = pairs.get(key, 0) + 1
    first = result["most_confused"][0]
    assert pairs[(first["true"], first["predicted"])] == first["count"] == max(pairs.values())
    recalls = [c["recall"] for c in result["per_class"] if c["recall"] is not None]
    assert result["macro_recall"] == pytest.approx(np.mean(recalls))
    assert all(c["recall"] == c["top1"] for c in result["per_class"] if c["n"])
    assert result["calibration"]["bins"] == 15 and result["calibration"]["temperature"] == 1.0

    page = (trained_run / "report_val.html").read_text()
    assert "Worst errors" in page and page.count("<figure") == 24
    tags = _event_tags(trained_run / "tb" / "eval_val")
    assert tags["top1"] == "scalars" and tags["macro_f1"] == "scalars"
    assert tags["most_confused"] == "text" and tags["top_losses"] == "text"
    assert tags["worst_errors"] == "images"
