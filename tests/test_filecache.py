"""The per-file facts cache: a second start reads no file again, a changed file is checked again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import jpeg_bytes
from fastfood.data import duplicates, filecache
from fastfood.loaders import validate


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("FASTFOOD_FILE_CACHE", str(folder))
    return folder


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file the preflight really reads."""
    seen: list[str] = []
    real = validate.check_file

    def check(path: str, pixel_cap: int = validate.MAX_PIXELS) -> str | None:
        seen.append(path)
        return real(path, pixel_cap)

    monkeypatch.setattr(validate, "check_file", check)
    return seen


def test_second_preflight_reads_nothing_and_a_changed_file_is_read_again(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, other = tmp_path / "a.jpg", tmp_path / "b.jpg"
    good.write_bytes(jpeg_bytes())
    other.write_bytes(jpeg_bytes((1, 2, 3)))
    seen = _counting(monkeypatch)
    files = [str(good), str(other)]
    assert validate.check_files(files) == ([0, 1], [])
    assert sorted(seen) == sorted(files)
    seen.clear()
    assert validate.check_files(files) == ([0, 1], [])
    assert seen == []  # both answers came from the cache
    (cache / filecache.DB_NAME).stat()  # the cache is where FASTFOOD_FILE_CACHE says

    good.write_bytes(b"<html>not an image</html>")  # a changed size and mtime
    good_idx, bad = validate.check_files(files)
    assert seen == [str(good)]
    assert good_idx == [1] and bad == [(str(good), "not a JPEG or PNG file")]


def test_same_size_and_restored_mtime_is_still_read_again(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy tool that keeps the old mtime on new bytes of the same length: ctime moves."""
    path = tmp_path / "a.jpg"
    data = jpeg_bytes()
    path.write_bytes(data)
    before = os.stat(path)
    assert validate.check_files([str(path)]) == ([0], [])
    path.write_bytes(b"\x00" * len(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    if after.st_ctime_ns == before.st_ctime_ns:
        pytest.skip("this file system's ctime did not move")
    assert validate.check_files([str(path)])[0] == []


def test_preflight_answers_are_kept_per_pixel_cap(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_bytes(size=(40, 30)))
    assert validate.check_files([str(path)], 0)[0] == [0]
    assert validate.check_files([str(path)], 100)[0] == []  # 1200 pixels > 100
    assert validate.check_files([str(path)], 0)[0] == [0]


def test_hashes_are_cached_and_a_changed_file_is_hashed_again(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(jpeg_bytes((200, 10, 10), (16, 16)))
    b.write_bytes(jpeg_bytes((10, 200, 10), (16, 16)))
    first = duplicates.hash_files([str(a), str(b)])
    hashed: list[str] = []
    real = duplicates._both
    monkeypatch.setattr(duplicates, "_both", lambda p: hashed.append(p) or real(p))
    again = duplicates.hash_files([str(a), str(b)])
    assert hashed == [] and again.content == first.content
    assert list(again.phash) == list(first.phash)
    b.write_bytes(a.read_bytes())  # now an exact duplicate of a
    third = duplicates.hash_files([str(a), str(b)])
    assert hashed == [str(b)]
    assert third.content[0] == third.content[1] != first.content[1]


def test_off_or_unwritable_cache_computes_every_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    for setting in ("off", str(blocker / "cache")):
        monkeypatch.setenv("FASTFOOD_FILE_CACHE", setting)
        seen = _counting(monkeypatch)
        for _ in range(2):
            assert validate.check_files([str(path)]) == ([0], [])
        assert seen == [str(path)] * 2
        monkeypatch.undo()


def test_clusters_are_remembered_until_a_file_changes(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = (tmp_path / f"{n}.jpg" for n in "abc")
    a.write_bytes(jpeg_bytes((200, 10, 10), (16, 16)))
    b.write_bytes(a.read_bytes())
    c.write_bytes(jpeg_bytes((10, 10, 200), (16, 16)))
    files = [str(a), str(b), str(c)]
    assert duplicates.group_keys(files) == {str(a): str(a), str(b): str(a)}
    real = duplicates.clusters
    searched: list[int] = []
    monkeypatch.setattr(duplicates, "clusters",
                        lambda *args, **kw: searched.append(1) or real(*args, **kw))
    assert duplicates.group_keys(files) == {str(a): str(a), str(b): str(a)}
    assert searched == []  # the same names and hashes: the clusters were remembered
    c.write_bytes(a.read_bytes())
    assert duplicates.group_keys(files) == {str(f): str(a) for f in files}
    assert searched == [1]
