"""Download one large file over HTTP: resumable, checksummed, never half-finished.

The HTTP client is httpx: the test suite already talks HTTP with it (Starlette's
TestClient), it has timeouts by default (requests waits forever unless told), and its
`iter_raw` yields the bytes exactly as sent, so a server that adds gzip Content-Encoding
to a .tar.gz cannot change what is hashed or where a Range starts.

The file grows as DEST.part, beside DEST.part.json (URL, size, ETag / Last-Modified).
After a dropped connection (in this run, up to `attempts` times in a row without
progress) or an interrupted run (the next run), the rest is asked for with
`Range: bytes=N-` and `If-Range`, so a file that changed on the server comes back whole
(200) instead of spliced onto the old bytes. A server that ignores Range (200) or whose
file changed size is started again from zero; 416 means the part is already whole, or
longer than the file (then from zero too). The md5 is computed as the bytes arrive; only
a file with the expected md5 is renamed to DEST, a wrong one is deleted and named.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from fastfood.data.progress import Transfer, size
from fastfood.errors import FastfoodError

CHUNK = 1 << 20  # bytes per read when hashing a file already on disk
CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


def check_md5(text: str, flag: str = "--md5") -> str:
    """An md5 hex digest (32 hex digits), lower-cased; FastfoodError naming `flag` if not."""
    if not re.fullmatch(r"[0-9a-fA-F]{32}", text or ""):
        raise FastfoodError(f"{flag} must be 32 hex digits, got {text!r}")
    return text.lower()


def check_url(url: str, flag: str = "--url") -> str:
    if not re.match(r"https?://[^/\s]+", url or ""):
        raise FastfoodError(f"{flag} must be an http:// or https:// address, got {url!r}")
    return url


def file_md5(path: Path, upto: int | None = None) -> Any:
    """A hashlib md5 object fed with the first `upto` bytes of `path` (all by default)."""
    digest = hashlib.md5(usedforsecurity=False)
    left = path.stat().st_size if upto is None else upto
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest


class _Restart(Exception):
    """Start again from byte zero (the server's file is not the one the part came from)."""


class _Part:
    """DEST.part, its side file and the running md5 of the bytes in it."""

    def __init__(self, dest: Path, url: str, say: Callable[[str], None]) -> None:
        self.path = dest.with_name(dest.name + ".part")
        self.info_path = dest.with_name(dest.name + ".part.json")
        self.url = url
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            info = {}
        self.info: dict[str, Any] = info if isinstance(info, dict) else {}
        if self.have and self.info.get("url") not in (None, url):
            say(f"the {size(self.have)} on disk came from {self.info['url']}: starting again "
                "from zero")
            self.reset()
        have = self.have
        if have:
            say(f"reading the {size(have)} downloaded before (for the md5)")
        self.md5 = file_md5(self.path) if have else hashlib.md5(usedforsecurity=False)

    @property
    def have(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def reset(self) -> None:
        self.path.write_bytes(b"")
        self.info = {}
        self.info_path.unlink(missing_ok=True)
        self.md5 = hashlib.md5(usedforsecurity=False)

    def remember(self, total: int | None, headers: Any) -> None:
        etag = headers.get("etag")
        self.info = {"url": self.url, "total": total,
                     "etag": etag if etag and not etag.startswith("W/") else None,
                     "last_modified": headers.get("last-modified")}
        self.info_path.write_text(json.dumps(self.info) + "\n")

    def validator(self) -> str | None:
        """What If-Range sends: a strong ETag, else Last-Modified."""
        return self.info.get("etag") or self.info.get("last_modified")

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)
        self.info_path.unlink(missing_ok=True)


def download(url: str, dest: str | os.PathLike[str], md5: str, progress: Transfer, *,
             attempts: int = 5, backoff_s: float = 2.0, timeout_s: float = 60.0,
             sleep: Callable[[float], None] = time.sleep) -> Path:
    """Fetch `url` to `dest`, resuming from dest.part, and check its md5; returns dest.

    A `dest` already there with the right md5 is kept (nothing is fetched). Transport
    errors and 5xx answers are retried with Range: at once when bytes had arrived, else
    after backoff_s, 2 * backoff_s, ...; after `attempts` in a row without a new byte,
    FastfoodError (the part stays, so running again continues). A wrong md5 deletes the
    download and raises FastfoodError naming it.
    """
    import httpx

    dest = Path(dest)
    md5 = check_md5(md5)
    check_url(url)
    if dest.exists():
        progress.note(f"checking the md5 of {dest}, downloaded before")
        got = file_md5(dest).hexdigest()
        if got == md5:
            progress.note(f"{dest} is already downloaded (md5 {md5})")
            return dest
        progress.note(f"{dest} has md5 {got}, not {md5}: downloading it again")
        dest.unlink()
    part = _Part(dest, url, progress.note)
    failures = 0
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 30.0))
    with httpx.Client(follow_redirects=True, timeout=timeout) as client:
        try:
            while True:
                before = part.have
                try:
                    if _attempt(client, url, part, progress):
                        break
                except _Restart as why:
                    progress.note(f"{why}: starting again from zero")
                    part.reset()
                    continue
                except (httpx.TransportError, _ServerError) as err:
                    moved = part.have > before
                    failures = 0 if moved else failures + 1
                    where = f"{size(part.have)}" + (
                        f" of {size(part.info['total'])}" if part.info.get("total") else "")
                    if failures >= attempts:
                        raise FastfoodError(
                            f"cannot download {url}: {_reason(err)} ({failures} tries in a row; "
                            f"{part.path} keeps {where}: run again to continue)") from None
                    # A transfer that was moving retries at once; a dead one waits longer.
                    wait = 0.0 if moved else backoff_s * 2 ** (failures - 1)
                    then = "continuing with an HTTP Range request" if part.have else \
                        "trying again"
                    progress.note(f"stopped at {where} ({_reason(err)}); {then} in {wait:g} s")
                    sleep(wait)
        except OSError as err:  # the disk, not the network: writing the part failed
            raise FastfoodError(f"cannot write {part.path}: {err.strerror or err}") from None
        except KeyboardInterrupt:
            progress.finish()
            progress.note(f"interrupted: {part.path} keeps {size(part.have)}; run the same "
                          "command again to continue")
            raise
        finally:
            progress.finish()
    got = part.md5.hexdigest()
    if got != md5:
        part.drop()
        raise FastfoodError(f"{dest.name} from {url}: md5 {got}, expected {md5}; deleted it "
                            "(run again to download it afresh)")
    os.replace(part.path, dest)
    part.info_path.unlink(missing_ok=True)
    return dest


class _ServerError(Exception):
    """A 5xx answer: worth another try."""


def _reason(err: BaseException) -> str:
    return str(err).splitlines()[0][:160] if str(err) else type(err).__name__


def _attempt(client: Any, url: str, part: _Part, progress: Transfer) -> bool:
    """One GET from the bytes on disk onwards; True when the whole file is on disk."""
    have = part.have
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if part.validator():
            headers["If-Range"] = part.validator()
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code == 416:
            total = _content_range(r.headers.get("content-range"))[2]
            if not have:
                raise FastfoodError(f"cannot download {url}: HTTP 416 to a plain GET")
            if total == have:
                return True  # the part was already whole: only the rename was missing
            raise _Restart(f"the server has no byte {have} (416, its file has "
                           f"{size(total) if total is not None else 'an unknown size'})")
        if r.status_code >= 500:
            raise _ServerError(f"HTTP {r.status_code} {r.reason_phrase}")
        if r.status_code not in (200, 206):
            raise FastfoodError(f"cannot download {url}: HTTP {r.status_code} "
                                f"{r.reason_phrase}")
        if r.status_code == 206 and have:
            start, _, total = _content_range(r.headers.get("content-range"))
            if start != have:
                raise _Restart(f"the server answered the Range from byte {start}, not {have}")
            known = part.info.get("total")
            if known and total and total != known:
                raise _Restart(f"the file on the server changed size ({size(known)} -> "
                               f"{size(total)})")
            progress.note(f"resuming at {size(have)} of {size(total) if total else '?'} "
                          "(HTTP Range)")
            mode = "ab"
        else:
            if have:
                progress.note("the server sent the whole file (no Range support, or the "
                              "file changed): starting again from zero")
                part.reset()
            length = r.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        part.remember(total, r.headers)
        _check_space(part.path.parent, (total or 0) - part.have)
        progress.start(total, part.have)
        with open(part.path, mode) as f:
            # As they arrive: with a chunk size, bytes buffered when the connection
            # drops would be lost instead of kept for the Range request.
            for chunk in r.iter_raw():
                f.write(chunk)
                part.md5.update(chunk)
                progress.advance(len(chunk))
        if total is not None and part.have != total:
            raise _ServerError(f"the transfer ended at byte {part.have} of {total}")
    return True


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(first, last, total) of `bytes 100-199/1000` or `bytes */1000` (None where absent)."""
    m = CONTENT_RANGE.fullmatch((value or "").strip())
    if not m:
        return None, None, None

    def num(x: str | None) -> int | None:
        return int(x) if x and x.isdigit() else None

    return num(m.group(1)), num(m.group(2)), num(m.group(3))


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise FastfoodError(f"not enough space in {folder}: the download needs {size(needed)} "
                            f"more, {size(free)} is free")
