"""A file server on 127.0.0.1 for download tests, with the faults real servers have.

    with FileServer(body, drops=[4096]) as server:   # the first answer stops at byte 4096
        download(server.url, ...)
    server.requests   # the Range / If-Range headers of every GET, in order

It honours `Range: bytes=N-` (unless ranges=False: a server that always answers 200) and
`If-Range` against its ETag, answers 416 past the end, and can answer a fixed status.
"""

from __future__ import annotations

import hashlib
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class FileServer:
    def __init__(self, body: bytes, *, ranges: bool = True, drops: list[int] | None = None,
                 etag: str | None = '"v1"', status: int | None = None,
                 name: str = "food-101.tar.gz") -> None:
        self.body, self.ranges, self.etag, self.status = body, ranges, etag, status
        self.drops = list(drops or [])  # per answer, in order: stop after this many bytes
        self.requests: list[dict[str, Any]] = []
        self.name = name
        self._server: ThreadingHTTPServer | None = None

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body).hexdigest()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.name}"

    def __enter__(self) -> "FileServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                owner._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        self.requests.append({"range": h.headers.get("Range"),
                              "if_range": h.headers.get("If-Range")})
        if self.status is not None:
            h.send_response(self.status)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        body, start = self.body, 0
        wanted = h.headers.get("Range")
        matches = h.headers.get("If-Range") in (None, self.etag)
        if self.ranges and wanted and wanted.startswith("bytes=") and matches:
            start = int(wanted[len("bytes="):].split("-")[0])
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        if self.ranges:
            h.send_header("Accept-Ranges", "bytes")
        if self.etag:
            h.send_header("ETag", self.etag)
        h.send_header("Content-Type", "application/gzip")
        h.send_header("Content-Length", str(len(body) - start))
        h.end_headers()
        chunk = body[start:]
        if self.drops:
            cut = self.drops.pop(0)
            h.wfile.write(chunk[:cut])
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
            h.close_connection = True
            return
        h.wfile.write(chunk)


def tar_tree(root: Path, out: Path, top: str = "food-101") -> Path:
    """root's files as out (.tar.gz), under one top-level folder as the official archive."""
    with tarfile.open(out, "w:gz") as tar:
        tar.add(root, arcname=top)
    return out


def evil_tarball(out: Path, kind: str) -> tuple[Path, str]:
    """A small .tar.gz with one good file and one bad member of `kind`; (path, its name)."""
    import io

    with tarfile.open(out, "w:gz") as tar:
        good = tarfile.TarInfo("food-101/meta/classes.txt")
        data = b"a\nb\n"
        good.size = len(data)
        tar.addfile(good, io.BytesIO(data))
        bad = tarfile.TarInfo({
            "absolute": "/tmp/fastfood-evil.txt",
            "dotdot": "food-101/../../fastfood-evil.txt",
            "symlink": "food-101/images/link",
            "hardlink": "food-101/images/hard",
            "fifo": "food-101/images/fifo",
            "device": "food-101/images/dev",
        }[kind])
        payload = b""
        if kind == "symlink":
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            bad.type, bad.linkname = tarfile.LNKTYPE, "food-101/meta/classes.txt"
        elif kind == "fifo":
            bad.type = tarfile.FIFOTYPE
        elif kind == "device":
            bad.type, bad.devmajor, bad.devminor = tarfile.CHRTYPE, 1, 3
        else:
            payload = b"escaped\n"
        bad.size = len(payload)
        tar.addfile(bad, io.BytesIO(payload) if payload else None)
    return out, bad.name
