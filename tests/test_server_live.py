"""A real `fastfood serve` process (uvicorn on a free 127.0.0.1 port): the API over HTTP,
uploads refused before they are read whole, concurrent clients, a clean Ctrl-C, and the page
in a real browser (Debian's chromium + chromium-driver through Selenium).

Set FASTFOOD_SCREENSHOT=path.png to keep the browser's screenshot of the page.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from support.browser import chrome
from support.server import MARKER, LiveServer, png_named_jpg, sample_files, unique_copies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(trained_run: Path) -> Path:
    return trained_run


@pytest.fixture(scope="module")
def predictor(run: Path):
    from fastfood.predict import Predictor

    return Predictor.load(run)


@pytest.fixture(scope="module")
def server(run: Path):
    """One server for the module; stopping it with Ctrl-C must exit 0 with a clean log."""
    # float32, as the `predictor` it is compared with (the command's auto may pick bf16)
    live = LiveServer(run, "--max-upload-mb", "1", "--max-wait-ms", "20", "--precision", "fp32")
    yield live
    code = live.stop()
    assert code == 0, live.output
    assert "Traceback" not in live.output, live.output
    assert MARKER not in live.output  # bodies and file names never reach the log


def _expected(predictor, files: list[str]) -> dict[str, list[tuple[int, float]]]:
    return {Path(p.file).name: [(g.index, g.prob) for g in p.top_k]
            for p in predictor.predict_files(files, top_k=5)}


def _top_names(guesses: list[tuple[int, float]], names: tuple[str, ...]) -> set[str]:
    """The display names that may rightly be shown first: the top class, and any class
    within float rounding of it."""
    best = guesses[0][1]
    return {names[i] for i, p in guesses if best - p <= 1e-4}


def test_api_over_http_agrees_with_predict(server: LiveServer, predictor, sample_dir: Path,
                                           tmp_path: Path) -> None:
    import httpx

    from support.runs import assert_same_top_k

    files = unique_copies(sample_files(sample_dir), tmp_path) + [str(png_named_jpg(tmp_path))]
    expected = _expected(predictor, files)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert "What's in this photo?" in http.get("/").text
        r = http.post("/v1/predict", files=[("file", (Path(f).name, Path(f).read_bytes()))
                                            for f in files])
        assert r.status_code == 200, r.text
        for pred in r.json()["predictions"]:
            want = expected[pred["file"]]
            assert_same_top_k([g["index"] for g in pred["top_k"]],
                              [g["prob"] for g in pred["top_k"]],
                              [i for i, _ in want], [p for _, p in want])


def test_oversized_bodies_are_refused_before_they_are_read(server: LiveServer) -> None:
    """413 while the client is still sending: by Content-Length, and counted when chunked."""
    host, port = server.url.removeprefix("http://").split(":")
    declared = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {30 << 20}\r\n\r\n").encode()
    status, body = _raw_exchange(host, int(port), declared, [b"\xff\xd8\xff" + bytes(1024)])
    assert status == 413 and "1 MB limit" in json.loads(body)["error"]
    chunked = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
               "Transfer-Encoding: chunked\r\n\r\n").encode()
    piece = bytes(64 << 10)
    chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n"] * 17  # 1.06 MB, never ended
    status, body = _raw_exchange(host, int(port), chunked, chunks)
    assert status == 413 and "1 MB limit" in json.loads(body)["error"]


def _raw_exchange(host: str, port: int, head: bytes, chunks: list[bytes]) -> tuple[int, bytes]:
    """Send a request head and some body, never the rest; read the answer that comes back."""
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head_out, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head_out.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
    return int(head_out.split()[1]), body


def test_bad_input_and_concurrent_clients_leave_it_serving(server: LiveServer,
                                                           sample_dir: Path) -> None:
    import httpx

    good = Path(sample_files(sample_dir, n=1)[0]).read_bytes()
    with httpx.Client(base_url=server.url, timeout=120) as http:
        refusals = [
            http.post("/v1/predict", content=f"not an image {MARKER}".encode()),
            http.post("/v1/predict", files=[("file", (f"{MARKER}.jpg", b"GIF89a" + bytes(40)))]),
            http.post("/v1/predict", content=good[: len(good) // 2]),
            http.post("/v1/models/fastfood:predict", content=f'{{"instances": "{MARKER}'),
            http.post("/v1/models/fastfood:predict",
                      json={"instances": [{"b64": MARKER}]}),
            http.get("/v1/predict"),
            http.get("/no/such/page"),
        ]
        assert [r.status_code for r in refusals] == [400, 400, 400, 400, 400, 405, 404]
        assert all(r.json()["error"] for r in refusals)

        statuses: list[int] = []

        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=120) as own:
                for _ in range(3):
                    statuses.append(own.post("/v1/predict", content=good).status_code)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        health = http.get("/healthz").json()
    assert statuses == [200] * 48
    assert health["status"] == "ok" and health["admitted"] == 0 and health["images"] >= 48


# --- the page in a real browser ----------------------------------------------------------------


def test_page_in_a_real_browser(server: LiveServer, predictor, sample_dir: Path,
                                tmp_path: Path) -> None:
    """Upload photos and a text file named .jpg: the bars show predict's top class, the
    bad file shows its error, and the page fetched nothing but this server."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    files = unique_copies(sample_files(sample_dir, n=5), tmp_path / "photos")
    bad = tmp_path / "shopping_list.jpg"
    bad.write_text("eggs, flour, sugar\n")
    expected = _expected(predictor, files)
    driver = chrome(tmp_path / "profile")
    try:
        driver.get(server.url + "/")
        WebDriverWait(driver, 60).until(
            lambda d: "classes" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "files").send_keys("\n".join([*files, str(bad)]))
        cards = lambda d: d.find_elements(By.CSS_SELECTOR, "#results .card")  # noqa: E731
        WebDriverWait(driver, 180).until(
            lambda d: len(cards(d)) == len(files) + 1
            and all(c.get_attribute("data-state") != "pending" for c in cards(d)))
        shown = {c.get_attribute("data-file"): c for c in cards(driver)}
        for name, guesses in expected.items():
            card = shown[name]
            assert card.get_attribute("data-state") == "done", card.text
            bars = card.find_elements(By.CSS_SELECTOR, ".bar")
            assert len(bars) == 5
            top = bars[0].find_element(By.CSS_SELECTOR, ".bar-name").text
            assert top in _top_names(guesses, predictor.display_names), (name, top, guesses)
            assert "s on the server" in card.find_element(By.CSS_SELECTOR, ".time").text
        error_card = shown[bad.name]
        assert error_card.get_attribute("data-state") == "error"
        assert "not a JPEG or PNG file" in error_card.find_element(By.CSS_SELECTOR, ".msg").text
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert fetched and all(u.startswith((server.url, "blob:", "data:")) for u in fetched), \
            fetched
        if os.environ.get("FASTFOOD_SCREENSHOT"):
            driver.save_screenshot(os.environ["FASTFOOD_SCREENSHOT"])
    finally:
        driver.quit()
