"""Per-job LC state, persisted as JSON in the LC store's ``meta`` table (key ``incremental/<ns>/<name>``).

Everything a restart must not lose: how many index lines were consumed, the train samples
waiting for the next round, the eval sample versions, the records quarantined by validation,
the samples of the round in flight (given back if that round fails), the last decision sent (so
it is never sent twice) and the last manual-trigger tokens handled. It is written in the same
transaction as the report it goes with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

EVAL_VERSIONS = 5
"""Eval sample batches kept (Sedna's ``EvalSamplesCapacity``)."""
QUARANTINE_KEPT = 100
"""Quarantined samples remembered (and reported) by line; older ones are only counted."""


@dataclass
class Progress:
    uid: str = ""
    consumed: int = 0
    pending_train: list[int] = field(default_factory=list)
    eval_versions: list[list[int]] = field(default_factory=list)
    in_flight_round: int = 0
    in_flight: list[int] = field(default_factory=list)
    sent_phase: str = ""
    sent_round: int = -1
    manual_train: str = ""
    manual_deploy: str = ""
    quarantined: list[list[Any]] = field(default_factory=list)
    """``[line, reason]`` of the latest quarantined index records (at most :data:`QUARANTINE_KEPT`)."""
    quarantined_total: int = 0

    def sent(self, phase: str, round_: int) -> bool:
        return self.sent_phase == phase and self.sent_round == round_

    def add_eval(self, positions: list[int]) -> None:
        if positions:
            self.eval_versions = [*self.eval_versions, positions][-EVAL_VERSIONS:]

    def quarantine(self, entries: list[list[Any]]) -> None:
        if entries:
            self.quarantined = [*self.quarantined, *entries][-QUARANTINE_KEPT:]
            self.quarantined_total += len(entries)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> Progress:
        if not raw:
            return cls()
        body: dict[str, Any] = json.loads(raw)
        return cls(**{k: v for k, v in body.items() if k in cls.__dataclass_fields__})


def meta_key(namespace: str, name: str, prefix: str = "incremental") -> str:
    return f"{prefix}/{namespace}/{name}"
