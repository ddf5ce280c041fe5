"""fastfood serve through the real app object (Starlette's TestClient): the page, the API,
agreement with predict and with the exported SavedModel, every kind of bad input, the
bounded queue, and logs without request bodies."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import jpeg_bytes
from support.cli import run_cli
from support.runs import assert_same_top_k
from support.server import (
    MARKER,
    bad_uploads,
    client_for,
    huge_frame_jpeg,
    png_named_jpg,
    sample_files,
    undecodable,
)

from fastfood.server.settings import ServeSettings


@pytest.fixture(scope="module")
def run(trained_run: Path) -> Path:
    return trained_run


@pytest.fixture(scope="module")
def model(run: Path):
    from fastfood.server.model import ServedModel

    return ServedModel.load(run)


@pytest.fixture(scope="module")
def predictor(run: Path):
    from fastfood.predict import Predictor

    return Predictor.load(run)


@pytest.fixture(scope="module")
def client(model):
    """The app as `fastfood serve` builds it, with a 1 MB upload limit to test cheaply."""
    from fastfood.server.app import create_app

    with client_for(create_app(model, ServeSettings(max_upload_mb=1))) as c:
        yield c


def _predict_top_k(predictor, files: list[str], k: int = 5) -> list[tuple[list[int], list[float]]]:
    out = []
    for p in predictor.predict_files(files, top_k=k):
        assert p.error is None, (p.file, p.error)
        out.append(([g.index for g in p.top_k], [g.prob for g in p.top_k]))
    return out


def _indices_probs(top_k: list[dict]) -> tuple[list[int], list[float]]:
    return [g["index"] for g in top_k], [g["prob"] for g in top_k]


# --- the page and the small GETs -----------------------------------------------------------


def test_page_is_one_self_contained_file(client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert 'type="file"' in html and "/v1/predict" in html
    # Nothing loaded from elsewhere: no external src/href/url(), and the policy forbids it.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert not re.search(r"@import", html)
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy


def test_model_info_and_health(client, run: Path) -> None:
    classes = json.loads((run / "classes.json").read_text())
    info = client.get("/v1/model").json()
    assert info["classes"] == classes["classes"]
    assert info["display_names"] == classes["display_names"]
    assert info["weights_convention"] == classes["convention"]
    assert info["image_size"] == 64 and info["num_classes"] == len(classes["classes"])
    assert Path(info["run"]["run_dir"]) == run.resolve() and info["run"]["checkpoint"] == "best"
    assert info["limits"]["max_upload_bytes"] == 1 << 20
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["admitted"] == 0
    status = client.get("/v1/models/fastfood").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


# --- same answers as predict -----------------------------------------------------------------


def test_raw_and_multipart_answers_agree_with_predict(client, predictor, sample_dir: Path,
                                                      tmp_path: Path) -> None:
    files = sample_files(sample_dir) + [str(png_named_jpg(tmp_path))]
    expected = _predict_top_k(predictor, files)
    for path, (indices, probs) in zip(files, expected):
        r = client.post("/v1/predict", content=Path(path).read_bytes(),
                        headers={"content-type": "image/jpeg"})
        assert r.status_code == 200, r.text
        (pred,) = r.json()["predictions"]
        assert "file" not in pred
        assert_same_top_k(*_indices_probs(pred["top_k"]), indices, probs)
    r = client.post("/v1/predict?top_k=3",
                    files=[("file", (Path(f).name, Path(f).read_bytes())) for f in files])
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["file"] for p in preds] == [Path(f).name for f in files]
    for pred, (indices, probs) in zip(preds, expected):
        assert len(pred["top_k"]) == 3
        assert_same_top_k(*_indices_probs(pred["top_k"]), indices[:3], probs[:3])
        guess = pred["top_k"][0]
        assert guess["name"] == predictor.display_names[guess["index"]]
        assert guess["class"] == predictor.classes[guess["index"]]


def test_tf_serving_endpoint_answers_as_the_exported_signature(
        client, run: Path, sample_dir: Path, tmp_path: Path) -> None:
    """Same request through the server and through the SavedModel's serving_default."""
    import tensorflow as tf

    from fastfood.export import SIGNATURE, ExportRequest, export_run
    from fastfood.server import tfserving

    files = sample_files(sample_dir, n=3) + [str(png_named_jpg(tmp_path))]
    blobs = [Path(f).read_bytes() for f in files]
    exported = tmp_path / "exported"  # default top-k, as the server's
    export_run(ExportRequest(out=exported, run_dir=run, check_images=8))
    signature = tf.saved_model.load(str(exported)).signatures[SIGNATURE]
    assert list(signature.structured_input_signature[1]) == [tfserving.INPUT]
    reference = {k: v.numpy() for k, v in signature(images=tf.constant(blobs)).items()}
    assert set(reference) == set(tfserving.OUTPUTS)

    b64 = [base64.b64encode(b).decode() for b in blobs]
    rows = client.post("/v1/models/fastfood:predict",
                       json={"instances": [{"b64": s} for s in b64]})
    named = client.post("/v1/models/fastfood:predict",
                        json={"signature_name": "serving_default",
                              "instances": [{"images": {"b64": s}} for s in b64]})
    columns = client.post("/v1/models/fastfood:predict",
                          json={"inputs": {"images": [{"b64": s} for s in b64]}})
    assert rows.status_code == named.status_code == columns.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    outputs = columns.json()["outputs"]
    # The three request forms give the same answers. Not bit for bit: the dynamic batcher may
    # group the images of one request differently from another's, which moves the float32
    # probabilities by ~1e-8.
    for a, b in zip(predictions, named.json()["predictions"], strict=True):
        assert a["classes"] == b["classes"] and a["names"] == b["names"]
        np.testing.assert_allclose(a["probs"], b["probs"], atol=1e-6)
    assert len(predictions) == len(files)
    for i, pred in enumerate(predictions):
        assert set(pred) == set(reference)  # one object per instance, keyed by output name
        assert len(pred["classes"]) == reference["classes"].shape[1]
        assert_same_top_k(pred["classes"], pred["probs"], reference["classes"][i].tolist(),
                          reference["probs"][i].tolist())
        names = [n.decode() for n in reference["names"][i]]
        for c, name in zip(pred["classes"], pred["names"]):
            assert name == names[reference["classes"][i].tolist().index(c)]
        for key in tfserving.OUTPUTS:  # columnar: the same answers, by output
            if key == "probs":
                np.testing.assert_allclose(outputs[key][i], pred[key], atol=1e-6)
            else:
                assert outputs[key][i] == pred[key]
    empty = client.post("/v1/models/fastfood:predict", json={"instances": []})
    assert empty.status_code == 200 and empty.json() == {"predictions": []}


# --- dynamic batching ------------------------------------------------------------------------


def test_concurrent_requests_share_one_forward_pass(model, predictor, sample_dir: Path) -> None:
    """Eight requests at once, max batch 8, a long max wait: one pass of eight answers all."""
    from fastfood.server.app import create_app

    files = sample_files(sample_dir, n=8)[:8]
    expected = _predict_top_k(predictor, files)
    app = create_app(model, ServeSettings(max_batch=8, max_wait_ms=30_000, max_queue=8))
    answers: dict[int, dict] = {}
    with client_for(app) as c:
        def send(i: int) -> None:
            answers[i] = c.post("/v1/predict", content=Path(files[i]).read_bytes()).json()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        health = c.get("/healthz").json()
    assert health["batches"] == 1 and health["largest_batch"] == 8 and health["images"] == 8
    for i, (indices, probs) in enumerate(expected):
        assert_same_top_k(*_indices_probs(answers[i]["predictions"][0]["top_k"]), indices, probs)


def test_full_queue_answers_503_with_retry_after(model, sample_dir: Path) -> None:
    """Two slots, both held by requests whose forward pass is blocked: the third is refused
    before its body is read, then served once the queue drains."""
    from fastfood.server.app import create_app

    app = create_app(model, ServeSettings(max_batch=2, max_wait_ms=0, max_queue=2))
    jpeg = Path(sample_files(sample_dir, n=1)[0]).read_bytes()
    gate = threading.Event()
    statuses: list[int] = []
    with client_for(app) as c:
        batcher = app.state.server.batcher
        real = batcher.run_batch
        batcher.run_batch = lambda images: (gate.wait(60), real(images))[1]

        def send() -> None:
            statuses.append(c.post("/v1/predict", content=jpeg).status_code)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for _ in range(400):  # until both hold their slot (no wall-clock assertion)
            if c.get("/healthz").json()["admitted"] == 2:
                break
            threading.Event().wait(0.05)
        busy = c.post("/v1/predict", content=jpeg)
        tf_busy = c.post("/v1/models/fastfood:predict", json={"instances": []})
        gate.set()
        for t in threads:
            t.join(120)
        after = c.post("/v1/predict", content=jpeg)
        health = c.get("/healthz").json()
    assert busy.status_code == 503 and tf_busy.status_code == 503
    assert int(busy.headers["retry-after"]) >= 1
    assert "queue is full" in busy.json()["error"]
    assert statuses == [200, 200] and after.status_code == 200
    assert health["rejected"] == 2 and health["admitted"] == 0


def test_request_with_more_images_than_the_queue_is_refused(model) -> None:
    from fastfood.server.app import create_app

    jpeg = jpeg_bytes((1, 2, 3), (16, 16))
    app = create_app(model, ServeSettings(max_batch=2, max_queue=3))
    with client_for(app) as c:
        r = c.post("/v1/predict", files=[("file", (f"{i}.jpg", jpeg)) for i in range(4)])
        tfs = c.post("/v1/models/fastfood:predict",
                     json={"instances": [{"b64": base64.b64encode(jpeg).decode()}] * 4})
        ok = c.post("/v1/predict", files=[("file", (f"{i}.jpg", jpeg)) for i in range(3)])
    assert r.status_code == 413 and "at most 3 files" in r.json()["error"]
    assert tfs.status_code == 413 and "--max-queue" in tfs.json()["error"]
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 3


# --- bad input: a 4xx JSON error naming the problem, and the server stays up ------------------


def _still_serving(client) -> None:
    r = client.post("/v1/predict", content=jpeg_bytes((90, 90, 200), (24, 24)))
    assert r.status_code == 200 and r.json()["predictions"][0]["top_k"]
    assert client.get("/healthz").json()["admitted"] == 0  # every slot given back


@pytest.mark.parametrize("case", sorted(bad_uploads()))
def test_bad_upload_gets_a_clear_4xx(client, case: str) -> None:
    body, status, words = bad_uploads()[case]
    raw = client.post("/v1/predict", content=body, headers={"content-type": "image/jpeg"})
    assert raw.status_code == status and words in raw.json()["error"], raw.text
    # The same bytes as a file named .jpg in a multipart upload: named in its answer.
    multi = client.post("/v1/predict", files=[("file", (f"{case}.jpg", body))])
    assert multi.status_code == status, multi.text
    (pred,) = multi.json()["predictions"]
    assert pred["file"] == f"{case}.jpg" and words in pred["error"]
    tfs = client.post("/v1/models/fastfood:predict",
                      json={"instances": [{"b64": base64.b64encode(body).decode()}]})
    assert tfs.status_code == status and tfs.json()["error"].startswith("instances[0]: ")
    assert words in tfs.json()["error"]
    _still_serving(client)


def test_files_that_pass_the_preflight_but_do_not_decode(client) -> None:
    for data in undecodable().values():
        r = client.post("/v1/predict", content=data)
        assert r.status_code == 400 and r.json()["error"].startswith("cannot decode"), r.text
    _still_serving(client)


def test_one_bad_file_among_good_ones_is_answered_in_place(client, sample_dir: Path) -> None:
    good = Path(sample_files(sample_dir, n=1)[0]).read_bytes()
    r = client.post("/v1/predict", files=[("file", ("a.jpg", good)),
                                          ("file", ("notes.jpg", b"shopping list")),
                                          ("file", ("b.jpg", good))])
    assert r.status_code == 200
    a, bad, b = r.json()["predictions"]
    assert a["top_k"] == b["top_k"] and bad == {"file": "notes.jpg",
                                                "error": "not a JPEG or PNG file"}


def test_pixel_cap_reads_only_the_header(model) -> None:
    from fastfood.server.app import create_app

    png = bytearray(jpeg_bytes((1, 2, 3), (40, 30), fmt="PNG"))
    png[16:24] = (70000).to_bytes(4, "big") + (70000).to_bytes(4, "big")  # IHDR: 70000^2
    with client_for(create_app(model, ServeSettings(max_pixels=1000))) as c:
        small = c.post("/v1/predict", content=jpeg_bytes((1, 2, 3), (40, 30)))
        big_png = c.post("/v1/predict", content=bytes(png))
        big_jpeg = c.post("/v1/predict", content=huge_frame_jpeg(40000, 20000))
    assert small.status_code == 413 and "40x30 = 0.0 MP" in small.json()["error"]
    assert big_png.status_code == 413 and "70000x70000" in big_png.json()["error"]
    assert big_jpeg.status_code == 413 and "40000x20000" in big_jpeg.json()["error"]


def test_uploads_over_the_size_limit_are_refused_unread(client) -> None:
    """Over 1 MB: by Content-Length before reading, or while counting without one."""
    body = b"\xff\xd8\xff" + bytes(2 << 20)
    r = client.post("/v1/predict", content=body)
    assert r.status_code == 413 and "1 MB limit" in r.json()["error"]
    # Chunked (no Content-Length): counted as it arrives. (The TestClient hands the app the
    # body in one piece; that the rest is left unread is tested on a real server.)
    r = client.post("/v1/predict", content=iter([bytes(64 << 10)] * 64))
    assert r.status_code == 413 and "1 MB limit" in r.json()["error"]
    big_json = json.dumps({"instances": [{"b64": "A" * (2 << 20)}]})
    r = client.post("/v1/models/fastfood:predict", content=big_json)
    assert r.status_code == 413
    r = client.post("/v1/predict", files=[("file", ("big.jpg", body))])
    assert r.status_code == 413
    _still_serving(client)


@pytest.mark.parametrize("body, words", [
    (b"{not json", "malformed JSON"),
    (b"\xff\xfe", "malformed JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"instances": [{"b64": "@@not base64@@"}]}', "instances[0]: invalid base64"),
    (b'{"instances": [{"b64": "QUJD"}, {"b64": "QUJ"}]}', "instances[1]: invalid base64"),
    (b'{"instances": [{"bytes": "QUJD"}]}', "instances[0]: expected"),
    (b'{"instances": ["QUJD"]}', "instances[0]: expected"),
    (b'{"instances": {"b64": "QUJD"}}', "instances must be a list"),
    (b'{"inputs": {"pixels": []}}', "the only input is 'images'"),
    (b'{"instances": [], "inputs": []}', "exactly one of"),
    (b'{}', "exactly one of"),
    (b'{"signature_name": "predict", "instances": []}', "unknown signature_name"),
])
def test_malformed_tf_serving_requests(client, body: bytes, words: str) -> None:
    r = client.post("/v1/models/fastfood:predict", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and words in r.json()["error"], r.text
    _still_serving(client)


@pytest.mark.parametrize("method, path, status, words", [
    ("GET", "/v1/predict", 405, "allowed: POST"),
    ("PUT", "/v1/predict", 405, "allowed: POST"),
    ("DELETE", "/", 405, "not allowed on /"),
    ("POST", "/healthz", 405, "allowed: "),
    ("GET", "/v1/models/fastfood:predict", 405, "allowed: POST"),
    ("POST", "/v1/models/resnet:predict", 404, "Servable not found for request: Latest(resnet)"),
    ("GET", "/v2/predict", 404, "no such path: /v2/predict"),
    ("POST", "/predict", 404, "no such path"),
    ("GET", "/../../etc/passwd", 404, "no such path"),
])
def test_wrong_methods_and_paths(client, method: str, path: str, status: int, words: str) -> None:
    r = client.request(method, path, content=b"x")
    assert r.status_code == status and words in r.json()["error"], r.text
    if status == 405:
        assert r.headers["allow"]
    _still_serving(client)


@pytest.mark.parametrize("query, headers, body, status, words", [
    ("?top_k=0", {}, None, 400, "top_k must be an integer >= 1"),
    ("?top_k=many", {}, None, 400, "top_k must be an integer >= 1"),
    ("", {"content-type": "application/json"}, b'{"instances": []}', 415, ":predict"),
    ("", {"content-type": "multipart/form-data; boundary=zz"}, b"--zz\r\n\r\nnothing\r\n--zz--\r\n",
     400, "multipart"),
    ("", {"content-type": "multipart/form-data"}, b"junk", 400, "multipart"),
    ("", {"content-length": "12abc"}, b"x" * 5, 400, "Content-Length"),
])
def test_bad_request_shapes(client, query: str, headers: dict, body: bytes | None, status: int,
                            words: str) -> None:
    content = body if body is not None else jpeg_bytes((5, 5, 5), (16, 16))
    r = client.post(f"/v1/predict{query}", content=content, headers=headers)
    assert r.status_code == status and words in r.json()["error"], r.text
    _still_serving(client)


# --- logs --------------------------------------------------------------------------------------


def test_request_bodies_and_file_names_are_never_logged(client, caplog) -> None:
    """Nor anything else the client sent: the server logs what it refused and why."""
    secret = MARKER.encode()
    with caplog.at_level(logging.DEBUG):
        client.post("/v1/predict", content=b"text " + secret)
        client.post("/v1/predict", files=[("file", (f"{MARKER}.jpg", b"x" + secret))])
        client.post("/v1/models/fastfood:predict", content=b'{"instances": "' + secret)
        client.post("/v1/models/fastfood:predict",
                    content=b'{"instances": [{"b64": "' + secret + b'"}]}')
        client.post(f"/v1/predict?top_k={MARKER}", content=b"x")
        client.get(f"/{MARKER}")
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the client
    assert server_side  # the refusals are logged (without what was sent)
    assert not [r.getMessage() for r in server_side if MARKER in r.getMessage()]


# --- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--max-batch", "0"], "--max-batch must be >= 1"),
    (["--max-queue", "4", "--max-batch", "8"], "--max-queue (4) must be at least --max-batch"),
    (["--max-wait-ms", "-1"], "--max-wait-ms"),
    (["--max-upload-mb", "0"], "--max-upload-mb"),
    (["--port", "70000"], "--port"),
    (["--host", "no.such.host.invalid"], "--host no.such.host.invalid"),
])
def test_serve_refuses_bad_flags_in_one_line(args: list[str], words: str, run: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["serve", "--run-dir", str(run), *args], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_serve_refuses_a_port_in_use_and_a_missing_run(run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(["serve", "--run-dir", str(run), "--port", str(port)], capsys)
    assert code == 2 and f"--port {port}: cannot listen there" in err, err
    code, _, err = run_cli(["serve", "--run-dir", str(tmp_path / "nope")], capsys)
    assert code == 2 and "nope" in err, err


def test_listening_socket_is_tcp_so_asyncio_turns_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on sockets whose proto is TCP; without it, answers on a
    kept-alive connection wait for the client's delayed ACK."""
    import socket

    from fastfood.cli.serve import listen

    with listen("127.0.0.1", 0) as server:
        assert server.proto == socket.IPPROTO_TCP
        with socket.create_connection(server.getsockname()[:2]):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP


def test_batcher_runs_what_it_gathers_and_bounds_admission() -> None:
    """The batching policy alone, on a stand-in forward pass (no model)."""
    import asyncio

    from fastfood.server.batcher import Batcher, QueueFull

    seen: list[int] = []

    def forward(images: np.ndarray) -> np.ndarray:
        seen.append(len(images))
        return images.reshape(len(images), -1).sum(1, keepdims=True).astype(np.float32)

    async def scenario() -> tuple[list[float], QueueFull]:
        batcher = Batcher(forward, max_batch=4, max_wait_s=30, max_queue=6)
        batcher.start()
        batcher.admit(6)
        with pytest.raises(QueueFull) as full:
            batcher.admit(1)
        images = [np.full((2, 2, 3), i, np.uint8) for i in range(5)]
        first = [asyncio.ensure_future(batcher.predict(x)) for x in images[:4]]
        rows = [float(r[0]) for r in await asyncio.gather(*first)]  # a full batch: no wait
        batcher.max_wait_s = 0.01
        rows.append(float((await batcher.predict(images[4]))[0]))  # alone, after max_wait
        batcher.release(6)
        batcher.admit(6)  # room again
        await batcher.stop()
        return rows, full.value

    rows, full = asyncio.run(scenario())
    assert seen == [4, 1]
    assert rows == [0.0, 12.0, 24.0, 36.0, 48.0]  # each request got its own row back
    assert full.retry_after >= 1
