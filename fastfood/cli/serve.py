"""`fastfood serve`: the page and the HTTP API over a trained run (fastfood.server).

Flags, the run directory and the address are checked, and the port is bound, before
TensorFlow is imported: a typo or a port in use fails in a fraction of a second with one
line and exit code 2. The URL is printed once the model is loaded and warmed up.
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import click

from fastfood.cli.options import precision_option
from fastfood.server.settings import ServeSettings

DEFAULTS = ServeSettings()


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Run to serve (default: the newest under runs/).")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="A checkpoint prefix inside a run instead of its best/final weights.")
@click.option("--host", default=DEFAULTS.host, show_default=True,
              help="Address to listen on. 0.0.0.0 exposes the page and API to every "
                   "machine that can reach this one, with no authentication.")
@click.option("--port", type=int, default=DEFAULTS.port, show_default=True,
              help="Port; 0 picks a free one (the URL is printed).")
@click.option("--max-batch", type=int, default=DEFAULTS.max_batch, show_default=True,
              help="Most images in one forward pass.")
@click.option("--max-wait-ms", type=float, default=DEFAULTS.max_wait_ms, show_default=True,
              help="Longest an image waits for others to share its forward pass.")
@click.option("--max-queue", type=int, default=DEFAULTS.max_queue, show_default=True,
              help="Images in flight at most; past it requests get 503 with Retry-After.")
@click.option("--max-upload-mb", type=float, default=DEFAULTS.max_upload_mb,
              show_default=True, help="Largest request body; larger ones get 413 unread.")
@click.option("--max-pixels", type=int, default=DEFAULTS.max_pixels, show_default=True,
              help="Largest image (width x height) decoded; larger ones get 413.")
@click.option("--top-k", type=int, default=DEFAULTS.top_k, show_default=True,
              help="Classes per image (the TF Serving endpoint's k; /v1/predict?top_k=N).")
@click.option("--min-confidence", type=float, default=None,
              help="/v1/predict adds \"unknown\": true to an image whose top (calibrated) "
                   "probability is under this; a request's ?min_confidence=P overrides it.")
@precision_option
def serve(run_dir: Path | None, model_path: Path | None, host: str, port: int, max_batch: int,
          max_wait_ms: float, max_queue: int, max_upload_mb: float, max_pixels: int,
          top_k: int, min_confidence: float | None, precision: str) -> None:
    """Serve a trained run: a web page to try it, an HTTP API, TF Serving's REST predict."""
    from fastfood.inference.runs import readahead_weights, resolve_run_dir

    settings = ServeSettings(host=host, port=port, max_batch=max_batch, max_wait_ms=max_wait_ms,
                             max_queue=max_queue, max_upload_mb=max_upload_mb,
                             max_pixels=max_pixels, top_k=top_k,
                             min_confidence=min_confidence).check()
    run = resolve_run_dir(run_dir, model_path)
    sock = listen(settings.host, settings.port)
    readahead_weights(run)
    if not settings.loopback:
        click.echo(f"fastfood serve: WARNING: listening on {host}: every machine that can "
                   "reach this one can use the page and the API (no login, no TLS)", err=True)

    import uvicorn

    from fastfood.server.app import create_app
    from fastfood.server.model import ServedModel

    model = ServedModel.load(run_dir, model_path, precision=precision)
    click.echo(model.precision.line(), err=True)
    model.warm_up(settings.max_batch)
    app = create_app(model, settings)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"fastfood serve: http://{shown}:{bound_port}/ serving {model.info.run_dir} "
               f"({len(model.classes)} classes); Ctrl-C to stop", err=False)
    config = uvicorn.Config(app, log_config=log_config(), timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down gracefully on
        pass
    click.echo("fastfood serve: stopped", err=True)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error naming them."""
    from fastfood.errors import FastfoodError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
        # proto must say TCP: asyncio turns Nagle off (TCP_NODELAY) only on sockets that do,
        # and with Nagle on, every answer after the first on a kept-alive connection waits
        # ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        return sock
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise FastfoodError(f"--host {host} --port {port}: cannot listen there ({reason})") \
            from None


def log_config() -> dict:
    """uvicorn's logging, with fastfood's own logger on the same stderr handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["fastfood"] = {"handlers": ["default"], "level": "INFO",
                                     "propagate": False}
    return config
