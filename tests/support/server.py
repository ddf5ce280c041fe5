"""Shared pieces for the server tests (no tests in here): upload bytes good and bad, the
files to compare with predict, and a real `fastfood serve` process on a free port.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from conftest import jpeg_bytes
from support.corpus import ODD

# A string that must never show up in a log: it is put in bodies, JSON and file names.
MARKER = "NEVER-LOG-THIS-7f3a"


def client_for(app: Any) -> Any:
    """Starlette's TestClient (it warns that it prefers httpx2, which PyPI here lacks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient(app)


def sample_files(sample_dir: Path, n: int = 4) -> list[str]:
    """n validation images of the built-in sample (what the trained run learned), one class
    after another, plus a real photo from the shared odd-JPEG corpus when it is there."""
    from fastfood.data import load

    val = load(sample_dir).val
    by_class: dict[int, list[str]] = {}
    for path, label in zip(val.files, val.labels):
        by_class.setdefault(label, []).append(path)
    rounds = zip(*by_class.values())  # one of each class, then the next of each
    files = [path for group in rounds for path in group][:n]
    if (ODD / "hopper.jpg").is_file():
        files.append(str(ODD / "hopper.jpg"))
    return files


def unique_copies(files: list[str], folder: Path) -> list[str]:
    """The files copied under names that differ (the sample reuses 0060.jpg in each class)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        path = folder / f"{Path(f).parent.name}_{Path(f).name}"
        path.write_bytes(Path(f).read_bytes())
        out.append(str(path))
    return out


def png_named_jpg(folder: Path) -> Path:
    """A valid PNG saved as .jpg: the bytes decide the format, as in predict."""
    path = folder / "really_a_png.jpg"
    path.write_bytes(jpeg_bytes((30, 120, 200), (50, 40), fmt="PNG"))
    return path


def huge_frame_jpeg(width: int = 30000, height: int = 30000) -> bytes:
    """A small, well-formed JPEG whose frame header declares width x height pixels."""
    data = bytearray(jpeg_bytes((10, 200, 30), (16, 16)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 7] = height.to_bytes(2, "big")
    data[sof + 7:sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


def undecodable() -> dict[str, bytes]:
    """Bytes that pass the preflight but that TensorFlow cannot decode (as in
    support.corpus.corrupt_files, made here from generated images)."""
    jpeg = bytearray(jpeg_bytes((200, 120, 40), (40, 30)))
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 4] = 12  # 12-bit samples: libjpeg as built into TF refuses them
    png = bytearray(jpeg_bytes((10, 200, 30), (40, 30), fmt="PNG"))
    idat = png.find(b"IDAT")
    for k in range(idat + 6, idat + 16):
        png[k] ^= 0x5A  # scramble the deflate stream, keep the chunk layout and IEND
    return {"precision12.jpg": bytes(jpeg), "bad_idat.png": bytes(png)}


def bad_uploads() -> dict[str, tuple[bytes, int, str]]:
    """name -> (body, expected status, expected words in the error) for /v1/predict."""
    jpeg = jpeg_bytes((200, 50, 50), (40, 30))
    png = jpeg_bytes((200, 50, 50), (40, 30), fmt="PNG")
    gif = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(gif, "GIF")
    return {
        "text": (f"hello {MARKER}".encode(), 400, "not a JPEG or PNG"),
        "html": (b"<html><body>404 not found</body></html>", 400, "not a JPEG or PNG"),
        "gif": (gif.getvalue(), 400, "GIF is not supported"),
        "empty": (b"", 400, "empty (0 bytes)"),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2], 400, "end-of-image"),
        "truncated_png": (png[: len(png) - 20], 400, "IEND"),
        "huge_frame": (huge_frame_jpeg(), 413, "over the 50 MP limit"),
    }


class LiveServer:
    """A `fastfood serve` process on a free port; everything it prints is collected.

    A thread keeps reading its output (uvicorn logs every request: an unread pipe would
    fill up and stall the server).
    """

    def __init__(self, run_dir: Path, *args: str, timeout: float = 240) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        code = "import sys; from fastfood.cli import main; sys.exit(main(sys.argv[1:]))"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--run-dir", str(run_dir), "--port", "0",
             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._url: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.url = self._url.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise AssertionError("fastfood serve did not start:\n" + self.output) from None
        if not self.url:
            self.stop()
            raise AssertionError("fastfood serve exited:\n" + self.output)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if found:
                self._url.put(found.group(1))
        self._url.put("")  # the process ended

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        """SIGINT (Ctrl-C), as a user stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        return self.process.returncode
