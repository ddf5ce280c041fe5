"""`fastfood data food101` end to end against a server on 127.0.0.1 serving a small
Food-101-shaped tarball: unpacked into place, a second run does nothing, a wrong md5 or a
malicious member leaves nothing half-made, errors are one line, and `--data food101`
finds the downloaded tree."""

from __future__ import annotations

import os
import tarfile

import pytest

import fastfood.data as data
from fastfood.data.archive import unpack
from fastfood.data.food101_install import install
from fastfood.errors import FastfoodError
from support.cli import run_cli
from support.http_files import FileServer, evil_tarball, tar_tree
from test_download import Notes

CLASSES = {"churros": (4, 2), "pho": (3, 1), "tacos": (2, 2)}


@pytest.fixture
def tarball(make_food101, tmp_path):
    """A Food-101-shaped .tar.gz (food-101/meta, food-101/images) and its bytes."""
    root = make_food101(CLASSES, labels=["Churros", "Pho", "Tacos"])
    path = tar_tree(root, tmp_path / "served.tar.gz")
    return path.read_bytes()


def cli(server: FileServer, out, capsys, md5=None):
    return run_cli(["data", "food101", "--out", str(out), "--url", server.url,
                    "--md5", md5 or server.md5], capsys)


def leftovers(folder):
    """What a command left in `folder` (the lock file aside)."""
    return sorted(p for p in os.listdir(folder) if p != ".f101.lock")


def test_download_unpacks_into_place_and_a_second_run_does_nothing(tarball, tmp_path, capsys):
    out = tmp_path / "data" / "f101"
    with FileServer(tarball, drops=[len(tarball) // 2]) as server:
        code, stdout, stderr = cli(server, out, capsys)
        assert code == 0, stderr
        assert stdout == f"Food-101 is in {out}; train with: fastfood train --data {out}\n"
        spec = data.load(out)
        assert spec.classes == tuple(CLASSES) and spec.display_names[0] == "Churros"
        assert len(spec.test) == 5 and len(spec.train) + len(spec.val) == 9
        assert leftovers(out.parent) == ["f101"]  # archive deleted, no unpack folder
        assert "resuming at" in stderr and "(HTTP Range)" in stderr  # the cut was resumed
        assert "\r" not in stderr  # not a terminal: plain lines, no bar
        assert any(line.startswith("food-101.tar.gz: 100% (") for line in stderr.splitlines())

        asked = len(server.requests)
        code, stdout, _ = cli(server, out, capsys)
        assert code == 0 and len(server.requests) == asked
        assert stdout == f"Food-101 is already in {out}; nothing to do\n"


def test_a_wrong_md5_exits_2_naming_both_sums_and_leaves_nothing(tarball, tmp_path, capsys):
    out = tmp_path / "dl" / "f101"
    with FileServer(tarball) as server:
        code, stdout, stderr = cli(server, out, capsys, md5="f" * 32)
    assert code == 2 and stdout == ""
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("fastfood: error: f101.tar.gz from ")
    assert f"md5 {server.md5}, expected {'f' * 32}" in last
    assert leftovers(out.parent) == []


@pytest.mark.parametrize("kind, why", [
    ("absolute", "has an absolute path"), ("dotdot", "has '..' in its path"),
    ("symlink", "is a symlink (to '/etc/passwd'); links are refused"),
    ("hardlink", "is a hard link"), ("fifo", "is a FIFO"), ("device", "is a device file"),
])
def test_a_malicious_member_is_refused_by_name(tmp_path, kind, why):
    archive, name = evil_tarball(tmp_path / "evil.tar.gz", kind)
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(FastfoodError) as err:
        unpack(archive, into)
    assert str(err.value).startswith(f"{archive}: member {name!r} {why}")
    assert str(err.value).endswith("refusing to unpack it")
    assert not (tmp_path.parent / "fastfood-evil.txt").exists()
    assert not os.path.lexists(into / "food-101" / "images" / "link")


def test_a_malicious_archive_leaves_no_half_made_dataset(tmp_path, capsys):
    archive, name = evil_tarball(tmp_path / "evil.tar.gz", "symlink")
    served = archive.read_bytes()
    archive.unlink()
    out = tmp_path / "f101"
    with FileServer(served) as server:
        code, _, stderr = cli(server, out, capsys)
    assert code == 2 and f"member {name!r} is a symlink" in stderr
    assert stderr.strip().splitlines()[-1].startswith("fastfood: error: ")
    assert leftovers(tmp_path) == ["f101.tar.gz"]  # the checked archive, no tree, no tmp


def test_an_archive_without_a_food101_tree_is_refused(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.txt").write_text("not a dataset")
    served = tar_tree(tmp_path / "stuff", tmp_path / "s.tar.gz", top="x").read_bytes()
    with FileServer(served) as server:
        code, _, stderr = cli(server, tmp_path / "f101", capsys)
    assert code == 2 and "holds no Food-101 tree (no meta/classes.txt)" in stderr
    assert not (tmp_path / "f101").exists()


def test_out_that_holds_something_else_is_refused(tmp_path, capsys):
    out = tmp_path / "f101"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with FileServer(b"unused") as server:
        code, _, stderr = cli(server, out, capsys)
    assert code == 2 and server.requests == []
    assert stderr.count("\n") == 1 and f"--out {out} exists and is not a Food-101 tree" in stderr
    assert (out / "mine.txt").read_text() == "keep me"


def test_bad_md5_flag_is_one_line(tmp_path, capsys):
    code, _, stderr = run_cli(["data", "food101", "--out", str(tmp_path / "x"), "--md5", "12"],
                              capsys)
    assert code == 2 and stderr == "fastfood: error: --md5 must be 32 hex digits, got '12'\n"


def test_data_food101_alias_finds_the_downloaded_tree(tarball, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFOOD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FastfoodError, match="run `fastfood data food101` first"):
        data.check_root("food101")
    with FileServer(tarball) as server:
        root, did = install(None, Notes(), url=server.url, md5=server.md5)
    assert did and root == tmp_path / "cache" / "food-101"
    assert data.check_root("food101") == root.resolve()
    assert data.load("food101").root == str(root.resolve())
    (tmp_path / "food101").mkdir()  # a folder of that name here wins
    assert data.check_root("food101") == (tmp_path / "food101").resolve()


def test_unpack_writes_plain_files_and_folders(tarball, tmp_path):
    archive = tmp_path / "t.tar.gz"
    archive.write_bytes(tarball)
    into = tmp_path / "into"
    into.mkdir()
    with tarfile.open(archive) as tar:
        expected = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert unpack(archive, into) == len(expected)
    assert sorted(str(p.relative_to(into)) for p in into.rglob("*") if p.is_file()) == expected
