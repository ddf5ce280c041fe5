"""fastfood.data.download against a real HTTP server on 127.0.0.1: a cut transfer resumes
with Range, a server without Range support or with a changed file starts again cleanly,
416 and a wrong md5 are handled, and the plain progress lines are what a log should hold."""

from __future__ import annotations

import io
import json
import os

import pytest

from fastfood.data.download import download
from fastfood.data.progress import PlainLines
from fastfood.errors import FastfoodError
from support.http_files import FileServer

BODY = os.urandom(300_000)


class Notes:
    """A progress reporter that keeps what download() says and counts the bytes."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.bytes = 0
        self.starts: list[tuple[int | None, int]] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def start(self, total, done) -> None:
        self.starts.append((total, done))

    def advance(self, n: int) -> None:
        self.bytes += n

    def finish(self) -> None:
        pass


def fetch(server: FileServer, dest, progress=None, **kw):
    return download(server.url, dest, kw.pop("md5", server.md5), progress or Notes(),
                    backoff_s=0, **kw)


def test_a_cut_transfer_resumes_with_range(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    progress = Notes()
    with FileServer(BODY, drops=[120_000]) as server:
        assert fetch(server, dest, progress) == dest
    assert dest.read_bytes() == BODY
    first, second = server.requests
    assert first["range"] is None
    assert second == {"range": "bytes=120000-", "if_range": '"v1"'}
    assert progress.bytes == len(BODY)  # nothing fetched twice
    assert any(n.startswith("stopped at 117.2 KiB of 293.0 KiB (peer closed connection")
               and n.endswith("continuing with an HTTP Range request in 0 s")
               for n in progress.notes)
    assert any(n.startswith("resuming at 117.2 KiB of 293.0 KiB (HTTP Range)")
               for n in progress.notes)
    assert not (tmp_path / "food-101.tar.gz.part").exists()
    assert not (tmp_path / "food-101.tar.gz.part.json").exists()


def test_an_interrupted_run_continues_from_the_part_on_disk(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    (tmp_path / "food-101.tar.gz.part").write_bytes(BODY[:200_000])  # no side file either
    progress = Notes()
    with FileServer(BODY) as server:
        fetch(server, dest, progress)
    assert dest.read_bytes() == BODY
    assert server.requests == [{"range": "bytes=200000-", "if_range": None}]
    assert progress.bytes == len(BODY) - 200_000 and progress.starts == [(len(BODY), 200_000)]


def test_a_server_without_range_support_starts_again_from_zero(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    progress = Notes()
    with FileServer(BODY, ranges=False, drops=[100_000]) as server:
        fetch(server, dest, progress)
    assert dest.read_bytes() == BODY  # not the first 100 kB twice
    assert [r["range"] for r in server.requests] == [None, "bytes=100000-"]
    assert any("starting again from zero" in n for n in progress.notes)


def test_a_changed_file_is_fetched_whole_not_spliced(tmp_path):
    """If-Range: the part came from ETag "v0", the server now has "v1" and answers 200."""
    dest = tmp_path / "food-101.tar.gz"
    (tmp_path / "food-101.tar.gz.part").write_bytes(b"x" * 50_000)
    with FileServer(BODY, etag='"v1"') as server:
        (tmp_path / "food-101.tar.gz.part.json").write_text(json.dumps(
            {"url": server.url, "total": len(BODY), "etag": '"v0"', "last_modified": None}))
        fetch(server, dest)
    assert dest.read_bytes() == BODY
    assert server.requests == [{"range": "bytes=50000-", "if_range": '"v0"'}]


def test_a_changed_size_starts_again(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    (tmp_path / "food-101.tar.gz.part").write_bytes(BODY[:1000])
    progress = Notes()
    with FileServer(BODY, etag=None) as server:
        (tmp_path / "food-101.tar.gz.part.json").write_text(json.dumps(
            {"url": server.url, "total": len(BODY) + 5, "etag": None, "last_modified": None}))
        fetch(server, dest, progress)
    assert dest.read_bytes() == BODY
    assert [r["range"] for r in server.requests] == ["bytes=1000-", None]
    assert any("changed size" in n and "starting again from zero" in n for n in progress.notes)


def test_416_for_a_whole_part_only_renames_it(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    (tmp_path / "food-101.tar.gz.part").write_bytes(BODY)
    progress = Notes()
    with FileServer(BODY) as server:
        fetch(server, dest, progress)
    assert dest.read_bytes() == BODY and progress.bytes == 0
    assert server.requests == [{"range": f"bytes={len(BODY)}-", "if_range": None}]


def test_416_for_a_part_longer_than_the_file_starts_again(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    (tmp_path / "food-101.tar.gz.part").write_bytes(BODY + b"junk")
    progress = Notes()
    with FileServer(BODY) as server:
        fetch(server, dest, progress)
    assert dest.read_bytes() == BODY
    assert any("416" in n and "starting again from zero" in n for n in progress.notes)


def test_a_wrong_md5_is_refused_by_name_and_nothing_is_kept(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    with FileServer(BODY) as server, pytest.raises(FastfoodError) as err:
        fetch(server, dest, md5="0" * 32)
    message = str(err.value)
    assert "\n" not in message and "food-101.tar.gz" in message
    assert f"md5 {server.md5}, expected {'0' * 32}" in message
    assert sorted(os.listdir(tmp_path)) == []


def test_a_download_already_there_is_kept(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    dest.write_bytes(BODY)
    progress = Notes()
    with FileServer(BODY) as server:
        fetch(server, dest, progress)
    assert server.requests == [] and "already downloaded" in progress.notes[-1]


def test_a_part_from_another_url_is_not_continued(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    (tmp_path / "food-101.tar.gz.part").write_bytes(b"y" * 5000)
    (tmp_path / "food-101.tar.gz.part.json").write_text(json.dumps(
        {"url": "http://mirror.example/food-101.tar.gz", "total": 9, "etag": None}))
    progress = Notes()
    with FileServer(BODY) as server:
        fetch(server, dest, progress)
    assert dest.read_bytes() == BODY and server.requests[0]["range"] is None
    assert "came from http://mirror.example/food-101.tar.gz" in progress.notes[0]


def test_server_errors_are_retried_then_named(tmp_path):
    dest = tmp_path / "food-101.tar.gz"
    with FileServer(BODY, status=503) as server, pytest.raises(FastfoodError) as err:
        fetch(server, dest, attempts=3)
    assert len(server.requests) == 3
    assert "HTTP 503" in str(err.value) and "3 tries" in str(err.value)
    assert "run again to continue" in str(err.value)


def test_not_found_is_one_line_and_not_retried(tmp_path):
    with FileServer(BODY, status=404) as server, pytest.raises(FastfoodError) as err:
        fetch(server, tmp_path / "x.tar.gz")
    assert len(server.requests) == 1
    assert str(err.value) == f"cannot download {server.url}: HTTP 404 Not Found"


@pytest.mark.parametrize("kw, words", [({"md5": "abc"}, "--md5 must be 32 hex digits"),
                                       ({"url": "ftp://x/y"}, "--url must be an http")])
def test_bad_md5_or_url(tmp_path, kw, words):
    with pytest.raises(FastfoodError, match=words):
        download(kw.get("url", "http://127.0.0.1:9/x"), tmp_path / "x", kw.get("md5", "0" * 32),
                 Notes())


def test_plain_lines_every_tenth_with_rate_and_time_left():
    out = io.StringIO()
    now = [0.0]
    lines = PlainLines("food-101.tar.gz", out, clock=lambda: now[0])
    lines.start(10 * 1024 * 1024, 2 * 1024 * 1024)  # resumed at 20 %
    for _ in range(16):
        now[0] += 0.5
        lines.advance(512 * 1024)
    printed = out.getvalue().splitlines()
    assert printed[0] == "food-101.tar.gz: 30% (3.0 MiB of 10.0 MiB), 1.0 MiB/s, 7 s left"
    assert printed[-1] == "food-101.tar.gz: 100% (10.0 MiB of 10.0 MiB), 1.0 MiB/s, 0 s left"
    assert len(printed) == 8 and "\r" not in out.getvalue()
