"""What `fastfood serve` can be told, as one frozen dataclass checked before anything loads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastfood.errors import FastfoodError

MB = 1 << 20


@dataclass(frozen=True)
class ServeSettings:
    """The server's limits and batching policy.

    max_queue bounds the images admitted and not yet answered (being read, decoded, waiting
    for or inside a forward pass); past it a request gets 503 before its body is read, so
    memory stays bounded by about max_queue x max_upload_mb under any load.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 64
    max_upload_mb: float = 20.0
    max_pixels: int = 50_000_000
    top_k: int = 5  # default top-k of /v1/predict, and the k of the TF Serving endpoint
    # /v1/predict answers "unknown": true under this top probability (None: never);
    # a request's ?min_confidence= overrides it.
    min_confidence: float | None = None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect (127.0.0.0/8, ::1, localhost)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check(self) -> "ServeSettings":
        """Raise FastfoodError naming the flag of the first value that cannot work."""
        if not 0 <= self.port <= 65535:
            raise FastfoodError(f"--port must be 0-65535 (0: any free port), got {self.port}")
        for flag, value in (("--max-batch", self.max_batch), ("--max-queue", self.max_queue),
                            ("--max-pixels", self.max_pixels), ("--top-k", self.top_k)):
            if value < 1:
                raise FastfoodError(f"{flag} must be >= 1, got {value}")
        if self.max_wait_ms < 0:
            raise FastfoodError(f"--max-wait-ms must be >= 0, got {self.max_wait_ms:g}")
        if self.max_upload_mb <= 0:
            raise FastfoodError(f"--max-upload-mb must be > 0, got {self.max_upload_mb:g}")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise FastfoodError(f"--min-confidence must be in [0, 1], got "
                                f"{self.min_confidence:g}")
        if self.max_queue < self.max_batch:
            raise FastfoodError(f"--max-queue ({self.max_queue}) must be at least "
                                f"--max-batch ({self.max_batch})")
        return self
