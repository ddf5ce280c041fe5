"""fastfood audit on made data: every planted problem is found (exact and near duplicates
across splits, a duplicate within a split, one image under two labels, odd files, swapped
labels with a run), and the clean data gives no alarm."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.audit_data import CLASSES, clean_dataset, planted_dataset
from support.cli import env, run_cli


def _file_sets(clusters: list[dict]) -> list[set[str]]:
    return sorted(({f["file"] for f in c["files"]} for c in clusters), key=sorted)


def test_planted_problems_are_each_found(tmp_path: Path) -> None:
    from fastfood.audit.audit import audit

    root, planted = planted_dataset(tmp_path / "data")
    found = audit(root).to_json()
    assert _file_sets(found["leaks"]) == sorted(planted["leaks"], key=sorted)
    assert _file_sets(found["label_conflicts"]) == planted["conflicts"]
    everything = sorted(planted["leaks"] + planted["conflicts"] + planted["duplicates"],
                        key=sorted)
    assert _file_sets(found["duplicates"]) == everything
    by_files = {frozenset(f["file"] for f in c["files"]): c for c in found["duplicates"]}
    exact = by_files[frozenset(planted["leaks"][0])]
    assert exact["exact"] and exact["splits"] == ["train", "val"]
    for near in planted["leaks"][1:]:
        cluster = by_files[frozenset(near)]
        assert not cluster["exact"] and "phash" in cluster["found_by"]
    conflict = by_files[frozenset(planted["conflicts"][0])]
    assert conflict["classes"] == ["bread", "curry"] and conflict["splits"] == ["train"]
    odd = {o["file"]: " ".join(o["problems"]) for o in found["odd_files"]}
    assert set(odd) == set(planted["odd"])
    for file, word in planted["odd"].items():
        assert word in odd[file], (file, odd[file])
    summary = found["summary"]
    assert (summary["leaks"], summary["label_conflicts"], summary["exact_clusters"]) == (3, 1, 3)
    assert found["balance"]["val"] == {"apple": 4, "bread": 4, "curry": 4}
    assert found["likely_mislabeled"] == []  # needs a run


def test_clean_data_gives_no_false_alarms(tmp_path: Path) -> None:
    from fastfood.audit.audit import audit

    found = audit(clean_dataset(tmp_path / "data")).to_json()
    assert found["duplicates"] == [] and found["odd_files"] == []
    assert found["summary"]["imbalance"] == 1.0 and found["images"] == 33


def test_command_writes_json_and_html_and_can_fail_on_leaks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = planted_dataset(tmp_path / "data")
    out = tmp_path / "out"
    code, stdout, err = run_cli(["audit", "--data", str(root), "--out", str(out)], capsys)
    assert code == 0, err
    assert "3 cross splits, 1 carry two labels" in stdout
    saved = json.loads((out / "audit.json").read_text())
    assert saved["summary"]["leaks"] == 3
    page = (out / "audit.html").read_text()
    assert page.count('data-kind="leak"') == 3 and "default-src 'none'" in page
    code, stdout, _ = run_cli(["audit", "--data", str(root), "--out", str(out), "--json",
                               "--fail-on-leak"], capsys)
    assert code == 1 and json.loads(stdout)["summary"]["label_conflicts"] == 1
    clean = clean_dataset(tmp_path / "clean")
    code, _, err = run_cli(["audit", "--data", str(clean), "--out", str(tmp_path / "o2"),
                            "--fail-on-leak"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["audit", "--data", str(tmp_path / "nope")], capsys)
    assert code == 2 and "nope" in err
    code, _, err = run_cli(["audit"], capsys)
    assert code == 2 and "--data" in err


def test_the_split_checked_is_the_one_training_draws(tmp_path: Path) -> None:
    """Class folders without train/val: duplicates leak with the plain split; the grouped
    one (the default for new runs) keeps each class's duplicates on one side."""
    from fastfood.audit.audit import audit

    root, _ = planted_dataset(tmp_path / "presplit")
    flat = tmp_path / "flat"
    for name in CLASSES:  # all files of a class in one folder, the split made by fastfood
        (flat / name).mkdir(parents=True)
        for split in ("train", "val"):
            for f in (root / split / name).iterdir():
                shutil.copyfile(f, flat / name / f"{split}_{f.name}")
    plain = audit(flat, val_fraction=0.5, group_duplicates=False)
    grouped = audit(flat, val_fraction=0.5)
    assert plain.settings["group_duplicates"] is False and plain.leaks
    assert grouped.settings["group_duplicates"] is True
    # what is left crossing splits is the image under two labels: no split can fix that
    assert grouped.leaks and all(c in grouped.conflicts for c in grouped.leaks)
    assert len(plain.leaks) > len(grouped.leaks)
    assert len(grouped.clusters) == len(plain.clusters) == 5


def test_audit_without_a_run_never_imports_tensorflow(tmp_path: Path) -> None:
    root, _ = planted_dataset(tmp_path / "data")
    code = ("import sys; from fastfood.cli import main; "
            f"main(['audit', '--data', {str(root)!r}, '--out', {str(tmp_path / 'o')!r}]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    done = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_near_pairs_is_exact() -> None:
    """The pigeonhole search finds every pair a brute-force comparison finds."""
    from fastfood.data.duplicates import hamming, near_pairs

    rng = np.random.default_rng(5)
    base = rng.integers(0, 2**63, 400, dtype=np.uint64)
    for k in range(60):  # flip 0..7 random bits of a random earlier hash
        flips = rng.choice(64, size=k % 8, replace=False)
        base[200 + k] = base[k] ^ np.uint64(sum(1 << int(b) for b in flips))
    d = hamming(base[:, None], base[None, :])
    for limit in (0, 3, 6):
        i, j = np.nonzero(np.triu(d <= limit, k=1))
        brute = set(zip(i.tolist(), j.tolist()))
        found = {(a, b) for a, b, _ in near_pairs(base, limit)}
        assert found == brute, limit
        assert all(d[a, b] == dist for a, b, dist in near_pairs(base, limit))


def test_likely_mislabeled_and_similar_embeddings() -> None:
    from fastfood.audit.network import likely_mislabeled, similar_pairs

    probs = np.array([[0.95, 0.05], [0.2, 0.8], [0.6, 0.4], [0.01, 0.99]])
    labels = np.array([1, 1, 1, 0])
    assert likely_mislabeled(probs, labels, 0.9) == [(3, 1, 0.99, 0.01), (0, 0, 0.95, 0.05)]
    assert [r[0] for r in likely_mislabeled(probs, labels, 0.5)] == [3, 0, 2]

    rng = np.random.default_rng(0)
    emb = np.abs(rng.normal(size=(50, 32))) + 5.0  # all-positive, like ReLU output
    emb[7] = emb[3] * 1.01 + rng.normal(scale=0.01, size=32)
    pairs, cut = similar_pairs(emb, 0.95, chunk=16)
    assert [(a, b) for a, b, _ in pairs] == [(3, 7)] and not cut


@pytest.mark.slow
def test_with_a_run_swapped_labels_are_flagged(tmp_path: Path, trained_run: Path,
                                               sample_dir: Path) -> None:
    """The sample's val images, three of those the run is surest about moved into another
    class's folder: the audit flags exactly the files predict (a separate path through the
    model) gives another class with enough probability, the three among them; and a copy
    is linked by the embeddings."""
    from fastfood.audit.audit import audit
    from fastfood.data import load
    from fastfood.predict import Predictor

    spec = load(sample_dir)
    files, labels = list(spec.val.files), list(spec.val.labels)
    predictions = list(Predictor.load(trained_run).predict_files(files, top_k=1))
    surest = sorted((p.top_k[0].prob, n) for n, p in enumerate(predictions)
                    if p.top_k[0].index == labels[n])[::-1][:3]
    assert len(surest) == 3, "the trained run gets too few sample images right"
    swap = {n for _, n in surest}
    threshold = min(p for p, _ in surest) - 1e-6
    root = tmp_path / "data"
    expected, swapped = set(), set()
    for n, (f, label) in enumerate(zip(files, labels)):
        folder = (label + 1) % len(spec.classes) if n in swap else label
        dest = root / ("train" if n % 2 else "val") / spec.classes[folder] / f"{n:03d}.jpg"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
        guess = predictions[n].top_k[0]
        if guess.index != folder and guess.prob >= threshold:
            expected.add(str(dest))
        if n in swap:
            swapped.add(str(dest))
    copy_of = next(n for n in range(len(files)) if n not in swap)
    shutil.copyfile(files[copy_of], root / "val" / spec.classes[labels[copy_of]] / "copy.jpg")
    found = audit(root, trained_run, mislabel_confidence=threshold).to_json()
    flagged = {m["file"] for m in found["likely_mislabeled"]}
    assert swapped <= flagged
    assert flagged == expected | ({str(root / "val" / spec.classes[labels[copy_of]] / "copy.jpg")}
                                  if predictions[copy_of].top_k[0].index != labels[copy_of]
                                  and predictions[copy_of].top_k[0].prob >= threshold else set())
    copies = [c for c in found["duplicates"] if any(f["file"].endswith("copy.jpg")
                                                   for f in c["files"])]
    assert len(copies) == 1 and "embedding" in copies[0]["found_by"]
    assert found["settings"]["mislabel_confidence"] == pytest.approx(threshold)
