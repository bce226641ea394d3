"""The REST front end: OIP v2 over HTTP (FastAPI), Sedna's ``/{service}/predict``, metrics.

Handlers read the raw body themselves (no pydantic models) so the binary tensor
extension costs no copies and every error has the OIP shape ``{"error": "..."}``.
Parsing, inference and encoding run in the thread pool, never on the event loop, except
on the idle fast path (:mod:`._repository`): a binary request with a small JSON header,
alone on this front end, to a model that answers in under ``INLINE_MAX_SECONDS``.
Authentication is a small ASGI middleware: when a token is set, every path except
``/v2/health/live`` and ``/v2/health/ready`` needs ``Authorization: Bearer <token>``.
Bad input is a 400 whose message names the field (``inputs[0].data: 1e+39 overflows FP32``);
a model that fails is a 500 that names the model only, its exception goes to the log.
:mod:`.server` builds the app with :func:`build_app` and runs it under uvicorn.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread
import numpy as np
from anyio import CapacityLimiter
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sedna import __version__
from sedna.backend import bytes_tensors
from sedna.backend.tensors import to_numpy_dtype
from sedna.common import bounded_json
from sedna.common.errors import InvalidInputError, ModelNotFoundError
from sedna.common.log import get_logger

from ._repository import EXTENSIONS, SERVER_NAME, FrontEndLoad, ModelRepository, failure_reason
from ._rest_codec import DEFAULT_MAX_ELEMENTS, HEADER_LENGTH, encode_response, parse_request
from ._tensors import fmt_shape, jsonable, model_metadata

LOG = get_logger(__name__)

OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
_DRAIN_LIMIT = 64 * 1024 * 1024
INLINE_MAX_HEADER = 64 * 1024
"""Largest JSON header (binary extension) the idle fast path parses on the event loop."""
REST_THREADS = 128
"""Threads that parse, run and encode REST requests (the event loop never blocks on a model)."""


class _TooLarge(Exception):
    pass


class BearerAuth:
    """ASGI middleware: 401 unless ``Authorization: Bearer <token>`` (open paths excepted)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": "missing or wrong bearer token (send 'Authorization: Bearer <token>')"})
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)


def build_app(repo: ModelRepository, *, token: str | None, max_request_bytes: int,
              sedna_service_name: str | Sequence[str] | None, is_ready: Callable[[], bool],
              max_tensor_elements: int = DEFAULT_MAX_ELEMENTS) -> Any:
    """The ASGI application of one server."""
    sedna_names = sedna_path_names(sedna_service_name)
    app = FastAPI(title=SERVER_NAME, version=__version__, docs_url=None, redoc_url=None, openapi_url=None)

    limiters: list[CapacityLimiter] = []
    load = FrontEndLoad()

    def limiter() -> CapacityLimiter:
        # Requests waiting for their batch hold a thread; anyio's default 40 would cap the batch size.
        if not limiters:
            limiters.append(CapacityLimiter(REST_THREADS))
        return limiters[0]

    def error(status: int, message: str) -> Any:
        return JSONResponse({"error": message}, status_code=status)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        too_big = declared.isdigit() and int(declared) > max_request_bytes
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_request_bytes:
                too_big = True
            if too_big:
                chunks.clear()
                if total > max_request_bytes + _DRAIN_LIMIT:
                    break  # stop draining; the connection will be closed
                continue
            chunks.append(chunk)
        if too_big:
            raise _TooLarge(f"request body of {declared or total} bytes exceeds the limit of {max_request_bytes}")
        return b"".join(chunks)

    @app.get("/v2/health/live")
    async def live() -> Any:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Any:
        ok = is_ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> Any:
        return {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}

    @app.get("/metrics")
    async def metrics() -> Any:
        payload, content_type = repo.metrics.exposition()
        return Response(payload, media_type=content_type)

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def metadata(name: str, version: str = "") -> Any:
        try:
            return model_metadata(repo.get(name, version))
        except ModelNotFoundError as exc:
            return error(404, str(exc))

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str = "") -> Any:
        try:
            repo.get(name, version)
        except ModelNotFoundError as exc:
            return error(404, str(exc))
        return {"name": name, "ready": is_ready()}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str = "") -> Any:
        label = repo.metrics_name(name)
        repo.metrics.request(label, "rest")
        load.active += 1
        try:
            model = repo.get(name, version)
            body = await read_body(request)
            header_length = request.headers.get(HEADER_LENGTH)

            def work() -> tuple[bytes, dict[str, str]]:
                parsed = parse_request(model, body, header_length, max_tensor_elements)
                return encode_response(model, repo.infer(model, parsed.inputs), parsed)

            small = header_length is not None and header_length.isdigit() and int(header_length) <= INLINE_MAX_HEADER
            if small and repo.runs_inline(model) and await load.alone():
                payload, headers = work()
            else:
                payload, headers = await anyio.to_thread.run_sync(work, limiter=limiter())
            return Response(payload, headers=headers)
        except BaseException as exc:
            return _failure(repo, label, "rest", exc, error)
        finally:
            load.active -= 1

    @app.get("/{service}")
    async def sedna_info(service: str) -> Any:
        if sedna_names and service not in sedna_names:
            return error(404, f"no Sedna service {service!r} here (serving {', '.join(map(repr, sedna_names))})")
        return {"infos": [{"path": f"/{service}", "name": "model_info"},
                          {"path": f"/{service}/predict", "name": "predict"}]}

    @app.post("/{service}/predict")
    async def sedna_predict(service: str, request: Request) -> Any:
        model = sedna_model(repo, sedna_names)
        repo.metrics.request(model.name, "sedna")
        try:
            if sedna_names and service not in sedna_names:
                raise ModelNotFoundError(f"no Sedna service {service!r} here "
                                         f"(serving {', '.join(map(repr, sedna_names))})")
            body = await read_body(request)
            result = await anyio.to_thread.run_sync(_sedna_predict, repo, model, body, max_tensor_elements,
                                                    limiter=limiter())
            return JSONResponse({"result": result})
        except BaseException as exc:
            return _failure(repo, model.name, "sedna", exc, error)

    if token:
        return BearerAuth(app, token)
    return app


def _failure(repo: ModelRepository, label: str, protocol: str, exc: BaseException, error: Callable[..., Any]) -> Any:
    if isinstance(exc, _TooLarge):
        repo.metrics.failure(label, protocol, "too_large")
        return error(413, str(exc))
    if not isinstance(exc, Exception):
        raise exc  # cancellation and exits are not request failures
    repo.metrics.failure(label, protocol, failure_reason(exc))
    if isinstance(exc, InvalidInputError):
        return error(400, str(exc))
    if isinstance(exc, ModelNotFoundError):
        return error(404, str(exc))
    LOG.warning("inference with model %r failed: %s: %s", label, type(exc).__name__, exc)
    return error(500, f"model {label!r} failed on this request; the server log has the details")


def _sedna_predict(repo: ModelRepository, model: Any, body: bytes, max_elements: int) -> Any:
    """Sedna's ``{"data": nested list}`` through the model's first input; :func:`sedna_output` as a nested list."""
    direct = getattr(model, "sedna_predict", None)
    text_input = bytes_tensors.is_bytes(model.inputs[0].datatype if len(model.inputs) == 1 else "")
    if direct is not None or text_input:  # the data goes on as JSON values (depth-bounded), not as a number tensor
        request = bounded_json.loads(body, what="request body")
    else:
        request = bounded_json.load(body, what="request body", tensor_paths=[("data",)], max_elements=max_elements)
    if not isinstance(request, dict) or "data" not in request:
        raise InvalidInputError("request body must be a JSON object with a 'data' field")
    if direct is not None:  # a plain estimator: Sedna's contract, JSON data in and out
        return sedna_json(direct(request["data"], request.get("callback")))
    if text_input:
        return sedna_bytes_predict(repo, model, request["data"])
    if len(model.inputs) != 1:
        raise InvalidInputError(f"model {model.name!r} has {len(model.inputs)} inputs; /predict feeds exactly one")
    spec = model.inputs[0]
    data = request["data"]
    if not isinstance(data, bounded_json.NumberArray) or data.shape is None:
        raise InvalidInputError(f"data: must be a rectangular nested list of {spec.datatype} values")
    array = data.to_numpy(to_numpy_dtype(spec.datatype), spec.datatype).reshape(data.shape)
    if array.ndim and array.shape[0] == 0:
        raise InvalidInputError("data: has no rows (send at least one sample)")
    return _predict_sample_or_batch(repo, model, spec, array)


def _predict_sample_or_batch(repo: ModelRepository, model: Any, spec: Any, array: np.ndarray) -> Any:
    """Run ``array`` as a batch, or as one sample when only ``(1, *shape)`` fits ``spec``; :func:`sedna_json` of
    :func:`sedna_output` (one sample in, one result out)."""
    added = False
    if not spec.accepts_shape(array.shape):
        if not spec.accepts_shape((1, *array.shape)):
            raise InvalidInputError(f"data: shape {fmt_shape(array.shape)} does not match model input "
                                    f"{spec.name!r} {fmt_shape(spec.shape)}")
        array, added = array[np.newaxis], True
    prediction = repo.infer(model, {spec.name: array})
    output = sedna_output(model, prediction)
    return sedna_json(output[0] if added else output)


# -- Sedna's API: path names, plain estimators, BYTES ------------------------------------------------


def sedna_path_names(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """The ``{service}`` segments Sedna's routes answer (empty: any)."""
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,) if names else ()
    return tuple(dict.fromkeys(n for n in names if n))


def sedna_model(repo: ModelRepository, names: Sequence[str]) -> Any:
    """The model Sedna's ``/predict`` feeds: the first one named like a path segment, else the first served."""
    return next((repo.models[n] for n in names if n in repo.models), repo.first)


def sedna_output(model: Any, prediction: Any) -> np.ndarray:
    """The output Sedna's ``/predict`` answers with: the model's last declared output.

    That is the output the SDK's cloud client reads by default (a classifier's probabilities
    rather than its labels), so an edge gets the same answer over either protocol.
    """
    names = [s.name for s in model.outputs if s.name in prediction.outputs] or list(prediction.outputs)
    return np.asarray(prediction.outputs[names[-1]])


def sedna_json(value: Any) -> Any:
    """A result as JSON: arrays as nested lists, BYTES elements as text."""
    if isinstance(value, np.ndarray):
        return bytes_tensors.to_text(value) if bytes_tensors.is_text_array(value) else value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, (list, tuple)):
        return [sedna_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): sedna_json(v) for k, v in value.items()}
    return jsonable(value)


def sedna_bytes_predict(repo: ModelRepository, model: Any, data: Any) -> Any:
    """Sedna's ``/predict`` for a model whose input is BYTES: ``data`` is a string or a (nested) list of strings."""
    spec = model.inputs[0]
    array = bytes_tensors.from_nested(data, "data")
    return _predict_sample_or_batch(repo, model, spec, array)
