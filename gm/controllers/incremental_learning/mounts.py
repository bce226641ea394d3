"""Which env of an IncrementalLearningJob's Pods names models or data, and with which credential.

:mod:`gm.workloads.storage` turns these :class:`~gm.workloads.storage.Mount` s into Pod specs
(SEDNA-REFERENCE §2.3, §2.5 IL): inputs (``BASE_MODEL_URL``, ``MODEL_URLS``, the round's
``TRAIN_DATASET_URL`` / ``TEST_DATASET_URL`` sample file, the inference ``MODEL_URL``) are
downloaded by the storage initializer when remote; outputs (the train ``MODEL_URL``, the round's
folder under ``spec.outputDir``) and ``ORIGINAL_DATASET_URL`` (workers resolve relative sample paths
against it) stay URLs and the worker gets the S3 credentials itself. Local paths are left as they are
(no hostPath rewrite, :func:`gm.controllers.incremental_learning.workers.stage_pod`): the LC and the
workers exchange them in reports. A Pod whose URLs are all local is not rewritten at all.

Credentials: a URL under ``spec.outputDir`` uses the job's ``credentialName``; the Dataset's URL its
own ``credentialName`` (else the job's); a Model's URL its own (else the job's). The S3 env
contract gives a worker one identity (one ``S3_ENDPOINT_URL``), so the ``s3://`` URLs of one Pod
must agree on one credential: :func:`problems` reports a Pod whose do not, and a credential Secret
that is missing or lacks a key, naming the URL. Pure functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gm.cluster.interface import Obj
from gm.controllers.common.problems import Problem
from gm.workloads import storage
from gm.workloads.storage import Mount

ModelLookup = Callable[[str], Obj | None]
Secrets = Mapping[str, Mapping[str, Any] | None]


def _spec(obj: Obj | None) -> dict[str, Any]:
    return dict((obj or {}).get("spec") or {})


def job_credential(job: Obj) -> str:
    return str(_spec(job).get("credentialName") or "")


def _credential_for(url: str, job: Obj, dataset: Obj | None, models: Sequence[Obj | None]) -> str:
    """The credential of the resource ``url`` belongs to (see the module docstring)."""
    out = str(_spec(job).get("outputDir") or "").rstrip("/")
    if out and url.startswith(out + "/"):
        return job_credential(job)
    for owner in (dataset, *models):
        if owner is not None and url and _spec(owner).get("url") == url:
            return str(_spec(owner).get("credentialName") or "") or job_credential(job)
    return job_credential(job)


def _model_objs(job: Obj, model: ModelLookup) -> list[Obj | None]:
    spec = _spec(job)
    names = [(spec.get("initialModel") or {}).get("name"), ((spec.get("deploySpec") or {}).get("model") or {})
             .get("name"), ((spec.get("evalSpec") or {}).get("initialEvalModel") or {}).get("name")]
    return [model(str(n)) for n in names if n]


def stage_mounts(job: Obj, stage: str, inputs: Mapping[str, Any], dataset: Obj | None,
                 model: ModelLookup) -> list[Mount]:
    """The Train or Eval Pod's mounts for the LC's Ready ``inputs``."""
    models = _model_objs(job, model)

    def mount(env: str, urls: Sequence[str], download: bool = True) -> Mount:
        creds = {_credential_for(u, job, dataset, models) for u in urls if u.startswith("s3://")}
        return Mount(env, tuple(urls), sorted(creds)[0] if creds else "", download=download)

    original = str(inputs.get("dataIndexURL") or _spec(dataset).get("url") or "")
    if stage == "Train":
        out = [mount("BASE_MODEL_URL", [str(inputs.get("model") or "")]),
               mount("MODEL_URL", [str(inputs.get("outputDir") or "")], download=False),
               mount("TRAIN_DATASET_URL", [str(inputs.get("dataURL") or "")])]
    else:
        urls = [str(m) for m in inputs.get("models") or []]
        out = [mount("MODEL_URLS", urls), mount("MODEL_URL", urls[:1]),
               mount("TEST_DATASET_URL", [str(inputs.get("dataURL") or "")])]
    return [*out, mount("ORIGINAL_DATASET_URL", [original], download=False)]


def infer_mounts(job: Obj, deploy_model: Obj | None) -> list[Mount]:
    """The inference Pod's ``MODEL_URL`` (the deploy Model, the job's credential when it names none)."""
    found = storage.model_mount("MODEL_URL", deploy_model)
    if not found.credential and any(u.startswith("s3://") for u in found.urls):
        found = Mount(found.env, found.urls, job_credential(job), found.sha256)
    return [found]


def any_remote(mounts: Sequence[Mount]) -> bool:
    """Whether any URL of ``mounts`` is remote (only then is a Pod's storage rewritten)."""
    return any(storage.is_remote(u) for m in mounts for u in m.urls)


def problems(where: str, mounts: Sequence[Mount],
             secrets: Mapping[str, Mapping[str, Any] | None]) -> list[Problem]:
    """Missing or incomplete credential Secrets (waiting), and clashing credentials (invalid)."""
    found: list[Problem] = []
    creds = sorted({m.credential for m in mounts if m.credential and any(u.startswith("s3://") for u in m.urls)})
    if len(creds) > 1:
        found.append(Problem(where, f"its s3:// URLs need different credential Secrets ({', '.join(creds)}); a "
                                    "worker has one S3 identity: give the Dataset, Models and job one credentialName"))
    for m in mounts:
        for url in m.urls:
            if url.startswith("s3://"):
                try:
                    storage.s3_env(secrets.get(m.credential), m.credential, url)
                except storage.StorageError as exc:
                    problem = Problem(where, str(exc), waiting=True)
                    if problem not in found:
                        found.append(problem)
    return found


def job_mounts(job: Obj, dataset: Obj | None, model: ModelLookup) -> list[Mount]:
    """Every URL the job's Pods may use, each with its credential: what :func:`problems` checks up front."""
    models = _model_objs(job, model)
    out = [Mount("spec.outputDir", (str(_spec(job).get("outputDir") or ""),), job_credential(job), download=False),
           Mount("spec.dataset", (str(_spec(dataset).get("url") or ""),),
                 _credential_for(str(_spec(dataset).get("url") or ""), job, dataset, models))]
    for obj in models:
        url = str(_spec(obj).get("url") or "")
        out.append(Mount("model", (url,), _credential_for(url, job, dataset, models)))
    return [m for m in out if any(u.startswith("s3://") for u in m.urls) or m.env != "model"]
