"""The Starlette app of `fastfood serve`: the page, the API, and every refusal as JSON.

    GET  /                          the page (one self-contained HTML file, no network assets)
    GET  /healthz                   {"status": "ok", queue and batch counters}
    GET  /v1/model                  classes, display names, image size, convention, run, limits
    POST /v1/predict                image bytes, or multipart with one or more files
    GET  /v1/models/fastfood        TF Serving's model status
    POST /v1/models/fastfood:predict  TF Serving's REST predict (see tfserving.py)

Every refusal is `{"error": "..."}` with a 4xx status that says what kind (400 bad input,
404/405 wrong path or method, 413 too large, 415 wrong body type, 503 busy with Retry-After),
and the server keeps serving. Request bodies are never logged, nor file names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fastfood.cpus import usable_cpus
from fastfood.server import tfserving
from fastfood.server.batcher import Batcher, QueueFull
from fastfood.server.model import ServedModel
from fastfood.server.settings import ServeSettings
from fastfood.server.uploads import UploadError

log = logging.getLogger("fastfood.server")

MODEL_NAME = "fastfood"
# The page may load nothing from elsewhere: scripts and styles are inline, images are the
# user's own files (blob: URLs), and it talks only to this server.
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "img-src blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'")


def error(status: int, message: str, headers: dict[str, str] | None = None,
          **extra: Any) -> JSONResponse:
    """The JSON every refusal gets."""
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class Slots:
    """Queue slots held by one request, given back when it is answered (see batcher.py)."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher
        self.held = 0

    def take(self, n: int) -> None:
        self.batcher.admit(n)
        self.held += n

    def __enter__(self) -> "Slots":
        self.take(1)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.batcher.release(self.held)


class Server:
    """Routes over one ServedModel; the batcher and decode threads live while the app runs."""

    def __init__(self, model: ServedModel, settings: ServeSettings) -> None:
        self.model = model
        self.settings = settings
        self.batcher: Batcher | None = None
        self.decoders: ThreadPoolExecutor | None = None
        self.page_html = resources.files("fastfood.server").joinpath("page.html").read_text()

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        self.batcher = Batcher(self.model.probs, max_batch=s.max_batch,
                               max_wait_s=s.max_wait_ms / 1000, max_queue=s.max_queue)
        self.decoders = ThreadPoolExecutor(max(2, usable_cpus()),
                                           thread_name_prefix="fastfood-decode")
        self.batcher.start()
        await asyncio.get_running_loop().run_in_executor(None, self.model.warm_up, s.max_batch)
        try:
            yield
        finally:
            await self.batcher.stop()
            self.decoders.shutdown(wait=True)

    # --- plain routes -------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        return HTMLResponse(self.page_html, headers={"Content-Security-Policy": PAGE_POLICY})

    async def health(self, request: Request) -> Response:
        b = self._batcher()
        stats = b.stats
        return JSONResponse({
            "status": "ok", "admitted": b.admitted, "queued": b.queued(),
            "max_queue": b.max_queue, "batches": stats.batches, "images": stats.images,
            "rejected": stats.rejected, "largest_batch": stats.largest_batch,
            "mean_batch": round(stats.images / stats.batches, 2) if stats.batches else 0.0,
        })

    async def model_info(self, request: Request) -> Response:
        s = self.settings
        return JSONResponse({**self.model.describe(), "limits": {
            "max_batch": s.max_batch, "max_wait_ms": s.max_wait_ms, "max_queue": s.max_queue,
            "max_upload_bytes": s.max_upload_bytes, "max_pixels": s.max_pixels,
            "top_k": s.top_k, "min_confidence": s.min_confidence}})

    # --- POST /v1/predict ---------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        start = time.perf_counter()
        k = self._top_k(request)
        threshold = self._min_confidence(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            return error(415, "Content-Type application/json: send the image bytes, or "
                              "multipart/form-data; TF Serving's JSON goes to "
                              f"POST /v1/models/{MODEL_NAME}:predict")
        with Slots(self._batcher()) as slots:
            body = await self._read_body(request)
            if kind == "multipart/form-data":
                uploads = await self._multipart(request, body)
            else:
                uploads = [(None, body)]
            del body
            slots.take(len(uploads) - 1)
            results = await asyncio.gather(*(self._classify(data) for _, data in uploads))
        predictions: list[dict[str, Any]] = []
        failures: list[UploadError] = []
        for (name, _), result in zip(uploads, results):
            entry: dict[str, Any] = {} if name is None else {"file": name}
            if isinstance(result, UploadError):
                failures.append(result)
                entry["error"] = result.reason
            else:
                entry["top_k"] = [g.to_json() for g in self.model.top_k(result, k)[0]]
                if threshold is not None:
                    entry["unknown"] = bool(np.max(result) < threshold)
            predictions.append(entry)
        body_out: dict[str, Any] = {"predictions": predictions,
                                    "time_ms": round((time.perf_counter() - start) * 1e3, 1)}
        if len(failures) < len(uploads):
            return JSONResponse(body_out)
        statuses = {f.status for f in failures}
        status = statuses.pop() if len(statuses) == 1 else 400
        log.warning("POST /v1/predict %d: %d upload(s) refused (%s)", status, len(failures),
                    failures[0].reason)
        if len(uploads) == 1:
            return error(status, failures[0].reason, **body_out)
        return error(status, f"none of the {len(uploads)} files could be classified "
                             f"(first: {failures[0].reason})", **body_out)

    def _top_k(self, request: Request) -> int:
        raw = request.query_params.get("top_k")
        if raw is None:
            return self.settings.top_k
        try:
            k = int(raw)
        except ValueError:
            k = 0
        if k < 1:
            raise HTTPException(400, f"top_k must be an integer >= 1, got {raw[:20]!r}")
        return k

    def _min_confidence(self, request: Request) -> float | None:
        """?min_confidence=P (0 to 1), else the server's --min-confidence (None: off)."""
        raw = request.query_params.get("min_confidence")
        if raw is None:
            return self.settings.min_confidence
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:  # also refuses nan
            raise HTTPException(400, f"min_confidence must be a number in [0, 1], got "
                                     f"{raw[:20]!r}")
        return value

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused with 413 once it passes the limit (before it is read whole)."""
        limit = self.settings.max_upload_bytes
        too_big = (f"request body over the {self.settings.max_upload_mb:g} MB limit "
                   "(--max-upload-mb)")
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HTTPException(400, "Content-Length is not a number")
            if int(declared) > limit:
                raise HTTPException(413, too_big)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, too_big)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _multipart(self, request: Request, body: bytes) -> list[tuple[str, bytes]]:
        """(file name, bytes) of every file part; 400 for a malformed or file-less body."""
        async def stream() -> AsyncIterator[bytes]:
            yield body

        limit = self.settings.max_queue
        parser = MultiPartParser(request.headers, stream(), max_files=limit, max_fields=100)
        try:
            form = await parser.parse()
        except MultiPartException as err:
            status = 413 if "Too many files" in err.message else 400
            hint = f" (at most {limit} files per request, --max-queue)" if status == 413 else ""
            raise HTTPException(status, f"multipart body: {err.message}{hint}") from None
        try:
            files = [(v.filename or f"file{i}", await v.read())
                     for i, (_, v) in enumerate(form.multi_items()) if isinstance(v, UploadFile)]
        finally:
            await form.close()
        if not files:
            raise HTTPException(400, "multipart body has no file part (send the photos as "
                                     "files, e.g. curl -F file=@photo.jpg)")
        return [(name[:255], data) for name, data in files]

    async def _classify(self, data: bytes) -> np.ndarray | UploadError:
        """The probabilities for one upload, or why it was refused."""
        loop = asyncio.get_running_loop()
        try:
            image = await loop.run_in_executor(self.decoders, self.model.decode, data,
                                               self.settings.max_pixels)
        except UploadError as err:
            return err
        return await self._batcher().predict(image)

    # --- TF Serving ---------------------------------------------------------------------

    async def tfs_status(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name.endswith(":predict"):  # the predict route, with the wrong method
            raise HTTPException(405, headers={"Allow": "POST"})
        if name != MODEL_NAME:
            return error(404, f"Servable not found for request: Latest({name[:100]})")
        return JSONResponse({"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]})

    async def tfs_predict(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name != MODEL_NAME:
            return error(404, f"Servable not found for request: Latest({name[:100]})")
        with Slots(self._batcher()) as slots:
            body = await self._read_body(request)
            try:
                parsed = tfserving.parse(body)
            except tfserving.RequestError as err:
                return error(400, str(err))
            del body
            n = len(parsed.images)
            if n > self.settings.max_queue:
                return error(413, f"{n} instances in one request; at most "
                                  f"{self.settings.max_queue} (--max-queue)")
            slots.take(max(0, n - 1))
            results = await asyncio.gather(*(self._classify(b) for b in parsed.images))
        k = min(self.settings.top_k, len(self.model.classes))
        rows = []
        for i, result in enumerate(results):
            where = "inputs" if parsed.columnar else "instances"
            if isinstance(result, UploadError):
                return error(result.status, f"{where}[{i}]: {result.reason}")
            guesses = self.model.top_k(result, k)[0]
            rows.append({"classes": [g.index for g in guesses],
                         "names": [g.name for g in guesses],
                         "probs": [g.prob for g in guesses]})
        return JSONResponse(tfserving.response(rows, parsed.columnar))

    def _batcher(self) -> Batcher:
        if self.batcher is None:
            raise RuntimeError("the app is not started (run it under uvicorn or a TestClient "
                               "context)")
        return self.batcher


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (404, 405, and ours) as JSON, headers (Allow) kept."""
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404:
        message = f"no such path: {request.url.path[:200]} (the API is under /v1/, the page at /)"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} not allowed on {request.url.path} (allowed: {allowed})"
    return error(exc.status_code, message, headers=exc.headers)


async def _busy(request: Request, exc: Exception) -> Response:
    """503 with Retry-After: the queue is full, come back when it should have drained."""
    assert isinstance(exc, QueueFull)
    return error(503, f"server busy: the queue is full; retry after {exc.retry_after} s",
                 headers={"Retry-After": str(exc.retry_after)})


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("%s %s: internal error %s", request.method, request.url.path, type(exc).__name__)
    return error(500, "internal error (see the server log)")


def create_app(model: ServedModel, settings: ServeSettings) -> Starlette:
    """The ASGI app serving `model`; run it with uvicorn (fastfood serve) or a TestClient."""
    server = Server(model, settings.check())
    routes = [
        Route("/", server.page, methods=["GET"]),
        Route("/healthz", server.health, methods=["GET"]),
        Route("/v1/model", server.model_info, methods=["GET"]),
        Route("/v1/predict", server.predict, methods=["POST"]),
        Route("/v1/models/{name}:predict", server.tfs_predict, methods=["POST"]),
        Route("/v1/models/{name}", server.tfs_status, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=server.lifespan, exception_handlers={
        HTTPException: _http_error, QueueFull: _busy, Exception: _internal})
    app.state.server = server
    return app
