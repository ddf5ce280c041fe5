"""How `fastfood serve` holds up: throughput against offline batch predict, latency, memory,
and behaviour past its queue bound. Shared by `benchmarks/serve.py` and `fastfood bench
--what serve`.

The server is a real `fastfood serve` process on a free 127.0.0.1 port (the only address
this code ever sends to); the clients are asyncio tasks in this process (plain HTTP/1.1 keep-alive), each
sending one raw JPEG body per request and the next as soon as the answer is in. Every loop
is bounded in request count and in time, and the server is stopped at the end.

1. Offline: `Predictor.predict_files` over the same files, in this process, with predict's
   loader, at predict's default batch (32) and at the server's --max-batch, after a warm-up
   pass: the faster of the two is the rate to compare with.
2. 16 clients: `requests_16` requests; img/s, latency p50/p99, mean batch size, and the
   server's CPU milliseconds per image (beside offline predict's: on a machine shared with
   other work, wall-clock rates stretch while CPU per image barely moves). Offline and
   16-client passes alternate, `repeats` rounds, so drifting load hits both alike; the
   target is the ratio of medians, >= 0.8.
3. 1 client: `requests_1` requests one after another; latency p50/p99.
4. Memory: the server's resident set size at rest (after start-up and warm-up) and its peak,
   sampled every 50 ms, under each load.
5. Overload: 4 x --max-queue clients for `overload_s` seconds, none backing off, twice: how
   many answers were 200 and 503 (each 503 must carry Retry-After), anything else (none is
   the goal), the server's memory before, at peak and after each round (a leak would show
   as growth from round to round), and whether it still answers.
6. Forward only: the model on a synthetic uint8 batch of each offline batch size, in this
   process: the ceiling that decoding and HTTP eat into.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.8
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServeBench:
    """What one serve benchmark run does; the defaults take a few minutes on 2 cores."""

    requests_16: int = 256
    requests_1: int = 40
    repeats: int = 2
    clients: int = 16
    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 64
    overload_s: float = 6.0
    overload_rounds: int = 3  # memory after each: growth from one to the next would be a leak
    overload_max_requests: int = 50_000
    request_timeout_s: float = 120.0


# What `fastfood bench --what serve` runs: the same parts, fewer requests (about a minute).
QUICK = ServeBench(requests_16=128, requests_1=20, repeats=1, overload_s=3.0,
                   overload_rounds=2)


# --- the server process ----------------------------------------------------------------------


class ServerProcess:
    """`fastfood serve --port 0` as a child process; its output is drained by a thread."""

    def __init__(self, run_dir: Path, bench: ServeBench, timeout_s: float = 300,
                 precision: str | None = None) -> None:
        argv = [sys.executable, "-c", "import sys; from fastfood.cli import main; main()",
                "serve", "--run-dir", str(run_dir), "--host", HOST, "--port", "0",
                "--max-batch", str(bench.max_batch), "--max-wait-ms", str(bench.max_wait_ms),
                "--max-queue", str(bench.max_queue)]
        if precision is not None:  # else the command's default (auto)
            argv += ["--precision", precision]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.tail: list[str] = []
        self._url: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self.url = self._url.get(timeout=timeout_s)
        except queue.Empty:
            self.url = ""
        if not self.url:
            self.stop()
            raise RuntimeError("fastfood serve did not start: " + "".join(self.tail[-20:]))

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "/v1/predict" not in line:  # keep what matters, not one line per request
                self.tail = (self.tail + [line])[-200:]
            found = re.search(rf"(http://{re.escape(HOST)}:\d+)/", line)
            if found:
                self._url.put(found.group(1))
        self._url.put("")

    def rss_mb(self) -> float:
        """Resident set size of the server now (MiB), from /proc."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def cpu_s(self) -> float:
        """CPU seconds (user + system, all threads) the server has used so far."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; the exit code (killed after 60 s if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class MemorySampler:
    """The peak of `read()` sampled every `every_s` while inside the `with`."""

    def __init__(self, read: Callable[[], float], every_s: float = 0.05) -> None:
        self.read, self.every_s = read, every_s
        self.peak = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "MemorySampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            self._stop.wait(self.every_s)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())


# --- clients --------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What a client loop saw: statuses, latencies of the 200s, wall time."""

    statuses: Counter[int | str] = dataclasses.field(default_factory=Counter)
    latencies_s: list[float] = dataclasses.field(default_factory=list)
    refusal_latencies_s: list[float] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0
    retry_after_missing: int = 0

    def summary(self) -> dict[str, Any]:
        ok = self.statuses.get(200, 0)
        lat = sorted(self.latencies_s)
        refused = sorted(self.refusal_latencies_s)
        extra = {"p50_ms_503": round(1000 * _percentile(refused, 50), 2),
                 "p99_ms_503": round(1000 * _percentile(refused, 99), 2)} if refused else {}
        return {
            "requests": sum(self.statuses.values()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)},
            "wall_s": round(self.wall_s, 3),
            "img_s": round(ok / self.wall_s, 3) if self.wall_s else 0.0,
            "p50_ms": round(1000 * _percentile(lat, 50), 2) if lat else None,
            "p99_ms": round(1000 * _percentile(lat, 99), 2) if lat else None,
            "max_ms": round(1000 * lat[-1], 2) if lat else None,
            **extra,
        }


def _percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile, linear between the closest ranks (numpy's default)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str,
                body: bytes) -> tuple[int, dict[str, str]]:
    """One POST /v1/predict on an open keep-alive connection: (status, headers)."""
    writer.write(f"POST /v1/predict HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n"
                 f"Content-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
                 .encode() + body)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in head[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(head[0].split()[1]), headers


async def _load(url: str, bodies: list[bytes], clients: int, *, max_requests: int,
                max_seconds: float, timeout_s: float) -> LoadResult:
    """`clients` concurrent loops POSTing bodies in turn until either bound is reached.

    Each client is one keep-alive connection speaking plain HTTP/1.1 over asyncio streams:
    httpx's connection pool costs grow with the number of connections (measured here: about
    50 requests/s in all at 256 connections against a server that only answers 503), which
    would time the client instead of the server.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    result = LoadResult()
    issued = 0
    start = time.perf_counter()

    async def client() -> None:
        nonlocal issued
        connection = None
        while issued < max_requests and time.perf_counter() - start < max_seconds:
            body = bodies[issued % len(bodies)]
            issued += 1
            sent = time.perf_counter()
            try:
                if connection is None:
                    connection = await asyncio.wait_for(
                        asyncio.open_connection(host, int(port)), timeout_s)
                status, headers = await asyncio.wait_for(
                    _post(*connection, url, body), timeout_s)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as err:
                result.statuses[type(err).__name__] += 1
                connection = _close(connection)
                continue
            result.statuses[status] += 1
            if status == 200:
                result.latencies_s.append(time.perf_counter() - sent)
            elif status == 503:
                result.refusal_latencies_s.append(time.perf_counter() - sent)
                result.retry_after_missing += "retry-after" not in headers
            if headers.get("connection", "").lower() == "close":
                connection = _close(connection)
        _close(connection)

    await asyncio.gather(*(client() for _ in range(clients)))
    result.wall_s = time.perf_counter() - start
    return result


def _close(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    """Close a client connection, if open; always returns None (the new state)."""
    if connection is not None:
        connection[1].close()
    return None


def load(url: str, bodies: list[bytes], clients: int, *, max_requests: int,
         max_seconds: float, timeout_s: float = 120.0) -> LoadResult:
    """Run `_load` to completion (its own event loop)."""
    return asyncio.run(_load(url, bodies, clients, max_requests=max_requests,
                             max_seconds=max_seconds, timeout_s=timeout_s))


def _forward_rates(predictor: Any, sizes: list[int], repeats: int) -> dict[str, Any]:
    """The model's own rate on a synthetic uint8 batch (no decoding, no HTTP): the ceiling."""
    import numpy as np

    out = {}
    for size in sizes:
        n = predictor.image_size
        x = np.random.default_rng(0).integers(0, 256, (size, n, n, 3), dtype=np.uint8)
        predictor.forward(x, traced=True)
        batches = max(1, 64 // size)
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(batches):
                predictor.forward(x, traced=True)
            rates.append(batches * size / (time.perf_counter() - start))
        out[f"batch_{size}"] = {"img_s": round(statistics.median(rates), 3),
                                "img_s_all": [round(r, 3) for r in rates]}
    return out


def _health(url: str) -> dict[str, Any]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/healthz", timeout=30) as response:  # 127.0.0.1 only
        return json.loads(response.read())


# --- the whole benchmark --------------------------------------------------------------------


def measure(run_dir: str | Path, files: list[str], bench: ServeBench = ServeBench(),
            progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run every part of the module doc against `run_dir`, requests cycling over `files`."""
    from fastfood.predict import DEFAULT_BATCH_SIZE, Predictor

    bodies = [Path(f).read_bytes() for f in files]
    out: dict[str, Any] = {"settings": {**dataclasses.asdict(bench), "files": len(files),
                                        "mean_body_kb": round(sum(map(len, bodies)) / len(bodies)
                                                              / 1024, 1)}}
    progress("serve: starting the server")
    server = ServerProcess(Path(run_dir), bench)
    try:
        time.sleep(1.0)
        rest_cold = server.rss_mb()
        progress("serve: warm-up")
        load(server.url, bodies, bench.clients, max_requests=4 * bench.clients,
             max_seconds=120)  # every batch size's kernels, the client's connections
        load(server.url, bodies, 1, max_requests=4, max_seconds=60)
        gc.collect()
        time.sleep(1.0)
        out["memory_mb"] = {"rest_after_start": round(rest_cold, 1),
                            "rest_after_warmup": round(server.rss_mb(), 1)}

        progress("serve: offline predict (warm-up)")
        predictor = Predictor.load(run_dir)
        n = bench.requests_16
        offline_files = [files[i % len(files)] for i in range(n)]
        sizes = sorted({DEFAULT_BATCH_SIZE, bench.max_batch})
        for size in sizes:
            list(predictor.predict_files(offline_files[:2 * size + 1], batch_size=size))
        offline: dict[int, list[float]] = {size: [] for size in sizes}
        offline_cpu: dict[int, list[float]] = {size: [] for size in sizes}
        serve16, peaks16, batches, serve_cpu = [], [], [], []
        for r in range(bench.repeats):
            for size in sizes:
                progress(f"serve: offline predict, batch {size}, round {r + 1}/{bench.repeats}")
                start, cpu = time.perf_counter(), time.process_time()
                answered = sum(p.error is None for p in
                               predictor.predict_files(offline_files, batch_size=size))
                offline[size].append(answered / (time.perf_counter() - start))
                offline_cpu[size].append(1000 * (time.process_time() - cpu) / answered)
            progress(f"serve: {bench.clients} clients, round {r + 1}/{bench.repeats}")
            before, cpu = _health(server.url), server.cpu_s()
            with MemorySampler(server.rss_mb) as mem:
                got = load(server.url, bodies, bench.clients, max_requests=n, max_seconds=600,
                           timeout_s=bench.request_timeout_s)
            serve_cpu.append(1000 * (server.cpu_s() - cpu) / max(1, got.statuses.get(200, 0)))
            after = _health(server.url)
            serve16.append(got)
            peaks16.append(mem.peak)
            batches.append((after["images"] - before["images"]) /
                           max(1, after["batches"] - before["batches"]))
        out["forward_only"] = _forward_rates(predictor, sizes, bench.repeats)
        del predictor
        rows16 = [g.summary() for g in serve16]
        out["offline"] = {f"batch_{size}": {
            "img_s": round(statistics.median(rates), 3), "img_s_all": [round(x, 3) for x in rates],
            "cpu_ms_per_img": round(statistics.median(offline_cpu[size]), 2)}
            for size, rates in offline.items()}
        # Judged against the faster offline batch size: predict's default, or the server's.
        out["offline_img_s"] = max(row["img_s"] for row in out["offline"].values())
        out[f"clients_{bench.clients}"] = {
            "img_s": round(statistics.median(r["img_s"] for r in rows16), 3),
            "p50_ms": statistics.median(r["p50_ms"] for r in rows16),
            "p99_ms": statistics.median(r["p99_ms"] for r in rows16),
            "mean_batch": round(statistics.median(batches), 2),
            "server_cpu_ms_per_img": round(statistics.median(serve_cpu), 2),
            "rounds": rows16,
        }
        ratio = out[f"clients_{bench.clients}"]["img_s"] / out["offline_img_s"]
        out["ratio_to_offline"] = round(ratio, 3)
        out["target_ratio"] = TARGET_RATIO
        out["meets_target"] = ratio >= TARGET_RATIO
        out["memory_mb"][f"peak_{bench.clients}_clients"] = round(max(peaks16), 1)

        progress("serve: 1 client")
        with MemorySampler(server.rss_mb) as mem:
            one = load(server.url, bodies, 1, max_requests=bench.requests_1, max_seconds=600,
                       timeout_s=bench.request_timeout_s)
        out["clients_1"] = one.summary()
        out["memory_mb"]["peak_1_client"] = round(mem.peak, 1)

        clients = 4 * bench.max_queue
        rounds = []
        before_mb = server.rss_mb()
        for r in range(bench.overload_rounds):
            progress(f"serve: overload, {clients} clients for {bench.overload_s:g} s, "
                     f"round {r + 1}/{bench.overload_rounds}")
            with MemorySampler(server.rss_mb) as mem:
                flood = load(server.url, bodies, clients,
                             max_requests=bench.overload_max_requests,
                             max_seconds=bench.overload_s, timeout_s=bench.request_timeout_s)
            time.sleep(2.0)  # let the admitted requests finish
            rounds.append({**flood.summary(), "retry_after_missing": flood.retry_after_missing,
                           "memory_mb_peak": round(mem.peak, 1),
                           "memory_mb_after": round(server.rss_mb(), 1)})
        health = _health(server.url)
        check = load(server.url, bodies, 1, max_requests=3, max_seconds=60)
        statuses: Counter[str] = Counter()
        for row in rounds:
            statuses.update(row["statuses"])
        out["overload"] = {
            "clients": clients, "queue_bound": bench.max_queue, "seconds": bench.overload_s,
            "statuses": dict(statuses),
            "retry_after_missing": sum(row["retry_after_missing"] for row in rounds),
            "memory_mb_before": round(before_mb, 1),
            "memory_mb_peak": max(row["memory_mb_peak"] for row in rounds),
            "memory_mb_after": rounds[-1]["memory_mb_after"],
            "alive_after": server.alive() and health.get("status") == "ok",
            "served_after": check.statuses.get(200, 0) == 3,
            "admitted_after": health.get("admitted"),
            "rounds": rounds,
        }
    finally:
        out["exit_code"] = server.stop()
        out["server_log_tail"] = [line.rstrip() for line in server.tail[-8:]]
    return out


def measure_untrained(files: list[str], num_classes: int, *, width: float, image_size: int,
                      bench: ServeBench = QUICK,
                      progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """`measure` over a fresh untrained run of that size (speed does not depend on training)."""
    import tempfile

    from fastfood.benchmark.untrained import write_untrained_run

    with tempfile.TemporaryDirectory(prefix="fastfood-serve-bench-") as tmp:
        progress("serve: writing an untrained run")
        run = write_untrained_run(Path(tmp) / "run", [f"class_{i}" for i in range(num_classes)],
                                  image_size=image_size, width=width)
        result = measure(run, files, bench, progress)
    return {"model": {"width": width, "image_size": image_size, "classes": num_classes,
                      "weights": "untrained"}, **result}


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, figure) lines for a terminal table."""
    c = result.get(f"clients_{result['settings']['clients']}", {})
    one, flood, mem = result.get("clients_1", {}), result.get("overload", {}), \
        result.get("memory_mb", {})
    return [
        ("forward only (synthetic)", ", ".join(
            f"{k.replace('_', ' ')} {v['img_s']:.1f} img/s"
            for k, v in result.get("forward_only", {}).items())),
        ("offline batch predict", ", ".join(
            f"{k.replace('_', ' ')} {v['img_s']:.1f} img/s (CPU {v['cpu_ms_per_img']} ms/img)"
            for k, v in result.get("offline", {}).items())),
        (f"{result['settings']['clients']} clients",
         f"{c.get('img_s', 0):.1f} img/s ({result.get('ratio_to_offline', 0):.2f}x offline, "
         f"target {TARGET_RATIO}x), p50 {c.get('p50_ms')} ms, p99 {c.get('p99_ms')} ms, "
         f"mean batch {c.get('mean_batch')}, server CPU {c.get('server_cpu_ms_per_img')} "
         "ms/img"),
        ("1 client", f"{one.get('img_s', 0):.1f} img/s, p50 {one.get('p50_ms')} ms, "
                     f"p99 {one.get('p99_ms')} ms"),
        ("memory (MiB)", ", ".join(f"{k} {v}" for k, v in mem.items())),
        (f"overload ({flood.get('clients')} clients)",
         f"statuses {flood.get('statuses')}, Retry-After missing "
         f"{flood.get('retry_after_missing')}, memory {flood.get('memory_mb_before')} -> "
         f"peak {flood.get('memory_mb_peak')} -> {flood.get('memory_mb_after')} MiB, "
         f"still serving: {flood.get('served_after')}"),
    ]
