"""Settings of the aggregation server, grouped and documented field by field.

Built once by the program (``workers.federated.aggregator`` reads them from env) and
passed to :class:`~sedna.service.aggregation.server.AggregationServer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sedna.common.errors import ConfigError
from sedna.service.aggregation.admission import (
    Admission,
    AnyClient,
    Credentials,
    HashedCredentials,
    SampleCaps,
    SignedCredentials,
)


@dataclass(frozen=True)
class ServerSettings:
    """How the aggregation server listens, waits and stops."""

    bind_ip: str = "127.0.0.1"
    """Address to listen on; loopback unless the deployment says otherwise."""
    bind_port: int = 7363
    """TCP port (0 picks a free one; see ``AggregationServer.port``)."""
    job_name: str = ""
    """Clients announcing another job name are refused (empty accepts any)."""
    token: str = field(default="", repr=False)
    """Bearer token clients must send as ``authorization`` metadata (empty disables auth)."""
    client_key: str = field(default="", repr=False)
    """Signing key of per-trainer credentials (``AGG_CLIENT_KEY``; see ``admission``)."""
    client_credential_hashes: Mapping[str, str] = field(default_factory=dict, repr=False)
    """``{client_id: "sha256:<hex>"}`` of per-trainer credentials (``AGG_CLIENT_CREDENTIALS``)."""
    max_samples_per_client: int = 0
    """Refuse updates claiming more samples than this (``MAX_SAMPLES_PER_CLIENT``; 0: no cap)."""
    client_samples: Mapping[str, int] = field(default_factory=dict)
    """Known dataset size per client id (``AGG_CLIENT_SAMPLES``): a tighter per-client cap."""
    tls_cert_file: str = ""
    """PEM certificate chain; with ``tls_key_file`` enables TLS."""
    tls_key_file: str = ""
    num_rounds: int = 1
    """Stop after this many completed rounds (Sedna's ``exit_round``)."""
    target_metric: str = ""
    """Stop early once the aggregated evaluation metric of this name ...(see ``target_value``)."""
    target_value: float = 0.0
    """... reaches this value (``>=``)."""
    round_timeout_s: float = 600.0
    """Deadline of one fit (or evaluate) phase; stragglers are dropped from the round."""
    min_completion_rate: float = 0.5
    """Share of the round's selected clients that must deliver for the round to count."""
    max_round_attempts: int = 5
    """Attempts of one round before the server gives up with ``RoundFailedError``."""
    rejoin_grace_s: float = 30.0
    """When too few clients are connected for a round to succeed (and on the first round after a
    resume), wait at most this long for them; then go on with ``min_fit_clients``."""
    checkpoint_dir: str = ""
    """Where each completed round is checkpointed (empty disables checkpoints and resume)."""
    checkpoint_keep: int = 2
    """Checkpoints to keep (0 keeps all)."""
    model_path: str = ""
    """Where the final global model is written (``.npz``); empty skips it."""
    chunk_size: int = 1 << 20
    """Payload bytes per Chunk message."""
    max_update_bytes: int = 0
    """Refuse updates announcing more bytes than this (0: no limit beyond the model's size)."""
    max_workers: int = 256
    """gRPC threads; every connected client holds one stream (and a reader thread)."""
    metrics_port: int = 0
    """Serve Prometheus metrics on ``bind_ip:metrics_port`` (0 disables the HTTP endpoint)."""
    seed: int | None = None
    """Seed of client sampling (None: random)."""
    stop_grace_s: float = 10.0
    """After the last round, how long to let clients receive the final model."""

    def __post_init__(self) -> None:
        if self.num_rounds < 1:
            raise ConfigError(f"num_rounds must be >= 1, got {self.num_rounds!r}")
        if not 0.0 < self.min_completion_rate <= 1.0:
            raise ConfigError(f"min_completion_rate must be in (0, 1], got {self.min_completion_rate!r}")
        if self.round_timeout_s <= 0:
            raise ConfigError(f"round_timeout_s must be > 0, got {self.round_timeout_s!r}")
        if self.chunk_size < 1024 or self.chunk_size > 32 << 20:
            raise ConfigError(f"chunk_size must be between 1 KiB and 32 MiB, got {self.chunk_size!r}")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError("tls_cert_file and tls_key_file must be given together")
        if self.max_round_attempts < 1:
            raise ConfigError(f"max_round_attempts must be >= 1, got {self.max_round_attempts!r}")
        if self.max_samples_per_client < 0:
            raise ConfigError(f"max_samples_per_client must be >= 0, got {self.max_samples_per_client!r}")
        for client_id, count in self.client_samples.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigError(f"client_samples[{client_id!r}] must be a non-negative integer, got {count!r}")
        if self.client_key and self.client_credential_hashes:
            raise ConfigError("give client_key or client_credential_hashes, not both")
        self.credentials()  # a malformed hash table fails here, naming the client

    def credentials(self) -> Credentials:
        """The per-trainer credential check these settings describe."""
        if self.client_key:
            return SignedCredentials(self.client_key, self.job_name)
        if self.client_credential_hashes:
            try:
                return HashedCredentials(self.client_credential_hashes)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        return AnyClient()

    def sample_caps(self) -> SampleCaps:
        """The caps on claimed sample counts."""
        return SampleCaps(self.max_samples_per_client, dict(self.client_samples))

    def admission(self) -> Admission:
        """The checks every joining client passes."""
        return Admission(self.job_name, self.credentials(), self.sample_caps())
