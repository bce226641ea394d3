"""Settings of the inference server: TLS and dynamic batching.

Plain frozen dataclasses that validate themselves on construction, so a bad value
fails where it is written (``BatchingConfig(max_queue_delay_ms=-1)``) rather than
deep inside a worker thread. :mod:`.server` passes them to the REST and gRPC
front ends (``_rest``, ``_grpc``) and to the per-model batchers (``_batching``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sedna.common.errors import ConfigError


@dataclass(frozen=True)
class TLSConfig:
    """Server certificate and key (PEM files) for HTTPS and gRPC over TLS."""

    cert_file: str
    """Path of the PEM certificate chain the server presents."""
    key_file: str
    """Path of the PEM private key of that certificate."""

    def __post_init__(self) -> None:
        for field_name in ("cert_file", "key_file"):
            path = getattr(self, field_name)
            if not path or not Path(path).is_file():
                raise ConfigError(f"TLSConfig.{field_name}={path!r} is not a readable file")

    def read(self) -> tuple[bytes, bytes]:
        """The (key, certificate) PEM bytes, as ``grpc.ssl_server_credentials`` wants them."""
        return Path(self.key_file).read_bytes(), Path(self.cert_file).read_bytes()


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching of concurrent requests to a model whose ``max_batch_size`` > 0."""

    max_batch_size: int = 32
    """Upper bound of samples per batch; the model's own ``max_batch_size`` may lower it. 0 disables batching."""
    max_queue_delay_ms: float = 2.0
    """How long the first request of a batch may wait for others to join it. With ``adaptive``
    (the default) it waits only while another batch of the model runs; a request that finds
    the model idle goes at once."""
    workers: int = 1
    """Threads per model that run batches (each runs one batch at a time)."""
    adaptive: bool = True
    """Dispatch at once when the model is idle; requests arriving while a batch runs go together
    as the next one. False: the first request of every batch waits up to ``max_queue_delay_ms``
    for the batch to fill (Triton's fixed queue delay)."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_batch_size, int) or self.max_batch_size < 0:
            raise ConfigError(f"BatchingConfig.max_batch_size={self.max_batch_size!r} must be an integer >= 0")
        if not self.max_queue_delay_ms >= 0:
            raise ConfigError(f"BatchingConfig.max_queue_delay_ms={self.max_queue_delay_ms!r} must be >= 0")
        if not isinstance(self.adaptive, bool):
            raise ConfigError(f"BatchingConfig.adaptive={self.adaptive!r} must be True or False")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"BatchingConfig.workers={self.workers!r} must be an integer >= 1")
