"""Fuzz the OIP v2 REST front end: the body parser alone, then a live inference server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given

from sedna.common.errors import InvalidInputError
from sedna.service.inference._rest_codec import parse_request
from tests.fuzz.conftest import FUZZ, FUZZ_DECODER
from tests.fuzz.strategies import oip_bodies
from tests.service.test_inference_support import LinearModel
from tests.support.procs import free_port, running

MODEL = LinearModel(max_batch_size=0)


@FUZZ_DECODER
@given(body=oip_bodies())
def test_the_parser_raises_only_invalid_input_errors(body: bytes) -> None:
    try:
        request = parse_request(MODEL, body, None, max_elements=1 << 16)
    except InvalidInputError as exc:
        assert str(exc)
    else:
        assert request.inputs["x"].dtype.name == "float32" and request.inputs["x"].shape[1:] == (4,)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    port = free_port()
    with running("tests.security.rest_entry", {}, tmp_path_factory.mktemp("fuzz-rest") / "server.log", port=port,
                 args=[str(port)]), httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False,
                                                 timeout=30) as client:
        yield client


@pytest.mark.processes
@FUZZ
@given(body=oip_bodies())
def test_a_live_server_answers_4xx_or_200_never_500(server: httpx.Client, body: bytes) -> None:
    response = server.post("/v2/models/linear/infer", content=body)

    assert response.status_code in (200, 400, 413), (response.status_code, response.text[:300])
    if response.status_code != 200:
        assert response.json()["error"]


@pytest.mark.processes
def test_after_the_fuzz_the_server_is_ready_and_serves(server: httpx.Client) -> None:
    assert server.get("/v2/health/ready").status_code == 200
    response = server.post("/v2/models/linear/infer", json={"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]})
    assert response.json()["outputs"][0]["data"] == [18, 22, 26]
