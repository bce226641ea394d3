"""The ``sedna.io/v1alpha1`` resource kinds, by every name the control plane uses for them.

A :class:`SednaKind` holds the Kind name (``JointInferenceService``), the lowercase ``key`` that
the edge hub's object keys and Sedna's worker reports (``ownerKind``) use, the URL plural and
the CLI's short names (``ji``). Everything that names a Sedna kind in ``gm``, ``lc`` or the CLI
takes the name from here; ``gm.cluster.interface`` declares the same kinds for the API side
(group, version, namespacing) and a test keeps the two equal. The SDK does not import this
module: its few owner kinds are pinned to these keys by tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GROUP = "sedna.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class SednaKind:
    """One Sedna resource kind and its names."""

    kind: str
    """The Kind name, as in manifests: ``JointInferenceService``."""
    plural: str
    """The URL plural: ``jointinferenceservices``."""
    short: tuple[str, ...] = ()
    """Short names (``ji``), as the CRD's ``shortNames``."""
    key: str = field(init=False)
    """The lowercase Kind name: hub object keys, ``ownerKind`` of worker reports, label prefixes."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.kind.lower())  # a field, not a property: read per routed object

    @property
    def api_version(self) -> str:
        return API_VERSION

    def names(self) -> tuple[str, ...]:
        """Every name a user may type for this kind: key, plural, singular and short names."""
        return (self.key, self.plural, self.plural.removesuffix("s"), *self.short)

    def __str__(self) -> str:
        return self.kind


DATASET = SednaKind("Dataset", "datasets")
MODEL = SednaKind("Model", "models")
JOINT_INFERENCE_SERVICE = SednaKind("JointInferenceService", "jointinferenceservices", ("ji",))
FEDERATED_LEARNING_JOB = SednaKind("FederatedLearningJob", "federatedlearningjobs", ("fl",))
INCREMENTAL_LEARNING_JOB = SednaKind("IncrementalLearningJob", "incrementallearningjobs", ("il",))
LIFELONG_LEARNING_JOB = SednaKind("LifelongLearningJob", "lifelonglearningjobs", ("ll",))

JOBS: tuple[SednaKind, ...] = (JOINT_INFERENCE_SERVICE, FEDERATED_LEARNING_JOB, INCREMENTAL_LEARNING_JOB,
                               LIFELONG_LEARNING_JOB)
"""Kinds that run workers: their workers report to the LC with ``ownerKind`` = the kind's key."""
ALL: tuple[SednaKind, ...] = (DATASET, MODEL, *JOBS)

_BY_KEY = {k.key: k for k in ALL}


def by_key(key: str) -> SednaKind:
    """The kind whose lowercase key is ``key``; :class:`KeyError` names the known keys otherwise."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"{key!r} is not a Sedna kind (known: {', '.join(sorted(_BY_KEY))})") from None


def find(name: str) -> SednaKind | None:
    """The kind ``name`` denotes (Kind name, plural, singular or short name, any case), or None."""
    low = name.lower()
    return next((k for k in ALL if low in k.names()), None)


__all__ = ["ALL", "API_VERSION", "DATASET", "FEDERATED_LEARNING_JOB", "GROUP", "INCREMENTAL_LEARNING_JOB", "JOBS",
           "JOINT_INFERENCE_SERVICE", "LIFELONG_LEARNING_JOB", "MODEL", "VERSION", "SednaKind", "by_key", "find"]
