"""ModelStreamInfer (Triton's streaming extension) over real sockets, with the sync and asyncio clients:
answers matched by id, requests of one stream batched together, failures in-band and alone,
tokens enforced, a broken stream failing its pending requests, and the asyncio unary client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError, ModelNotFoundError
from sedna.proto import grpc_predict_v2_pb2 as pb
from sedna.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from sedna.service.inference import AsyncGrpcInferenceClient, BatchingConfig, GrpcInferenceClient, InferenceServer
from tests.service.test_inference_support import TOKEN, LinearModel, W, serving

AUTH = (("authorization", f"Bearer {TOKEN}"),)


def rows(first: int, count: int = 1) -> np.ndarray:
    return np.arange(first, first + count, dtype=np.float32)[:, None].repeat(4, axis=1)


@pytest.fixture(scope="module")
def model() -> LinearModel:
    return LinearModel(max_batch_size=16, delay=0.02)


@pytest.fixture(scope="module")
def server(model: LinearModel) -> Iterator[InferenceServer]:
    batching = BatchingConfig(max_batch_size=16, max_queue_delay_ms=20)
    with serving([model], token=TOKEN, rest_port=None, batching=batching) as srv:
        yield srv


@pytest.fixture
def client(server: InferenceServer) -> Iterator[GrpcInferenceClient]:
    with GrpcInferenceClient("127.0.0.1", server.grpc_port, token=TOKEN) as c:
        yield c


class TestSyncStream:
    def test_concurrent_requests_are_answered_by_id_and_batched_together(
            self, client: GrpcInferenceClient, model: LinearModel) -> None:
        model.batch_sizes.clear()
        with client.stream() as stream:
            futures = [stream.submit("linear", {"x": rows(i, 2)}) for i in range(8)]
            results = [f.result(10) for f in futures]
        for i, result in enumerate(results):
            assert result.outputs["y"].tolist() == (rows(i, 2) @ W).tolist()
            assert result.parameters["hard_example"] is False
        assert sum(model.batch_sizes) == 16 and max(model.batch_sizes) > 2  # several requests shared a predict

    def test_a_failing_request_fails_alone_and_the_stream_goes_on(self, client: GrpcInferenceClient) -> None:
        poisoned = rows(1)
        poisoned[0, 0] = -1
        with client.stream() as stream:
            bad_shape = stream.submit("linear", {"x": np.zeros((1, 3), np.float32)})
            unknown = stream.submit("nope", {"x": rows(1)})
            good = stream.submit("linear", {"x": rows(3)})
            with pytest.raises(InvalidInputError, match=r"shape \[1,3\] does not match model input \[-1,4\]"):
                bad_shape.result(10)
            with pytest.raises(ModelNotFoundError, match="'nope'"):
                unknown.result(10)
            assert good.result(10).outputs["y"].tolist() == (rows(3) @ W).tolist()
            # a model failure fails its batch (here the request alone), not the stream
            with pytest.raises(CloudUnavailableError, match=r"INTERNAL.*poisoned sample"):
                stream.infer("linear", {"x": poisoned})
            assert stream.infer("linear", {"x": rows(4)}).outputs["y"].tolist() == (rows(4) @ W).tolist()

    def test_wrong_token_fails_the_stream_clearly(self, server: InferenceServer) -> None:
        with GrpcInferenceClient("127.0.0.1", server.grpc_port, token="wrong") as client, client.stream() as stream:
            # the refusal may arrive before or after the first request is sent: either way, it names the cause
            with pytest.raises(InferenceError, match=r"UNAUTHENTICATED.*check the client's token"):
                stream.infer("linear", {"x": rows(1)}, timeout=10)
            with pytest.raises(InferenceError, match="UNAUTHENTICATED"):
                stream.infer("linear", {"x": rows(1)}, timeout=10)

    def test_a_stopped_server_fails_pending_requests(self) -> None:
        slow = LinearModel(max_batch_size=0, delay=2.0)
        with serving([slow], rest_port=None) as srv, GrpcInferenceClient("127.0.0.1", srv.grpc_port) as client:
            stream = client.stream()
            pending = stream.submit("linear", {"x": rows(1)})
            srv.stop(grace=0.1)
            with pytest.raises(CloudUnavailableError):
                pending.result(10)
            with pytest.raises(CloudUnavailableError):
                stream.submit("linear", {"x": rows(1)})
            stream.close()

    def test_a_request_past_its_timeout_gives_up_without_breaking_the_stream(self, server: InferenceServer) -> None:
        slow = LinearModel(max_batch_size=0, delay=0.5)
        with serving([slow], rest_port=None) as srv, GrpcInferenceClient("127.0.0.1", srv.grpc_port) as client, \
                client.stream() as stream:
            with pytest.raises(CloudUnavailableError, match=r"no answer within 0.1s"):
                stream.infer("linear", {"x": rows(1)}, timeout=0.1)
            assert stream.infer("linear", {"x": rows(2)}, timeout=5).outputs["y"].tolist() == (rows(2) @ W).tolist()


class TestRawStream:
    def test_triton_shaped_messages_with_caller_ids(self, server: InferenceServer) -> None:
        """A plain stub (as tritonclient would send) gets one answer per request, carrying its id."""
        def requests() -> Iterator[pb.ModelInferRequest]:
            for i, key in enumerate(("a", "b", "c")):
                request = pb.ModelInferRequest(model_name="linear", id=key)
                request.inputs.add(name="x", datatype="FP32", shape=[1, 4])
                request.raw_input_contents.append(rows(i).tobytes())
                yield request

        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            answers = list(stub.ModelStreamInfer(requests(), metadata=AUTH, timeout=10))
        by_id = {a.infer_response.id: a for a in answers}
        assert sorted(by_id) == ["a", "b", "c"]
        assert all(not a.error_message for a in answers)
        y = np.frombuffer(by_id["c"].infer_response.raw_output_contents[0], np.float32)
        assert y.tolist() == (rows(2) @ W)[0].tolist()

    def test_error_answers_name_the_field_and_carry_the_code(self, server: InferenceServer) -> None:
        request = pb.ModelInferRequest(model_name="linear", id="bad")
        request.inputs.add(name="z", datatype="FP32", shape=[1, 4])
        request.raw_input_contents.append(rows(1).tobytes())
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            [answer] = list(stub.ModelStreamInfer(iter([request]), metadata=AUTH, timeout=10))
        assert answer.error_message == "inputs[0] 'z': model 'linear' has no input named 'z' (inputs: 'x')"
        assert answer.infer_response.id == "bad"
        assert answer.infer_response.parameters["error_code"].string_param == "INVALID_ARGUMENT"


class TestAsyncClient:
    def test_unary_and_stream_from_many_tasks(self, server: InferenceServer, model: LinearModel) -> None:
        async def main() -> tuple[list[list[float]], list[list[float]], bool]:
            async with AsyncGrpcInferenceClient("127.0.0.1", server.grpc_port, token=TOKEN) as client:
                ready = await client.model_ready("linear")
                unary = await asyncio.gather(*(client.infer("linear", {"x": rows(i)}) for i in range(4)))
                async with client.stream() as stream:
                    streamed = await asyncio.gather(*(stream.infer("linear", {"x": rows(i)}) for i in range(12)))
            return ([r.outputs["y"][0].tolist() for r in unary], [r.outputs["y"][0].tolist() for r in streamed],
                    ready)

        model.batch_sizes.clear()
        unary, streamed, ready = asyncio.run(main())
        assert ready is True
        assert unary == [(rows(i) @ W)[0].tolist() for i in range(4)]
        assert streamed == [(rows(i) @ W)[0].tolist() for i in range(12)]
        assert max(model.batch_sizes) > 1

    def test_errors_are_the_sdk_errors(self, server: InferenceServer) -> None:
        async def main() -> None:
            async with AsyncGrpcInferenceClient("127.0.0.1", server.grpc_port, token=TOKEN) as client:
                with pytest.raises(InvalidInputError, match=r"shape \[1,3\]"):
                    await client.infer("linear", {"x": np.zeros((1, 3), np.float32)})
                async with client.stream() as stream:
                    with pytest.raises(ModelNotFoundError):
                        await stream.infer("nope", {"x": rows(1)})
                    assert (await stream.infer("linear", {"x": rows(1)})).outputs["y"].shape == (1, 3)
            async with AsyncGrpcInferenceClient("127.0.0.1", server.grpc_port, token="wrong") as client:
                with pytest.raises(InferenceError, match="check the client's token"):
                    await client.infer("linear", {"x": rows(1)})
                async with client.stream() as stream:
                    with pytest.raises(InferenceError, match="UNAUTHENTICATED"):
                        await stream.infer("linear", {"x": rows(1)})

        asyncio.run(main())

    def test_nothing_listening_is_cloud_unavailable(self) -> None:
        from tests.support.procs import free_port

        async def main() -> None:
            async with AsyncGrpcInferenceClient("127.0.0.1", free_port(), timeout=1) as client:
                assert await client.server_ready() is False
                with pytest.raises(CloudUnavailableError):
                    await client.infer("linear", {"x": rows(1)})
                async with client.stream() as stream:
                    with pytest.raises(CloudUnavailableError):
                        await stream.infer("linear", {"x": rows(1)}, timeout=1)

        asyncio.run(main())


class _Overlap(LinearModel):
    """LinearModel that records how many predict calls run at once."""

    def __init__(self) -> None:
        super().__init__(max_batch_size=0, delay=0.05)
        self.running = self.most = 0
        self._count = threading.Lock()

    def predict(self, inputs: Any) -> Any:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().predict(inputs)
        finally:
            with self._count:
                self.running -= 1


def test_stream_window_bounds_requests_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client sending more than the window gets every answer, at most ``window`` running at once."""
    from sedna.service.inference import _grpc

    monkeypatch.setattr(_grpc, "STREAM_WINDOW", 3)
    model = _Overlap()
    with serving([model], rest_port=None) as srv, GrpcInferenceClient("127.0.0.1", srv.grpc_port) as client, \
            client.stream() as stream:
        futures = [stream.submit("linear", {"x": rows(i)}) for i in range(12)]
        done, _ = concurrent.futures.wait(futures, timeout=30)
        assert [f.result().outputs["y"].tolist() for f in futures] == [(rows(i) @ W).tolist() for i in range(12)]
    assert len(done) == 12
    assert model.most == 3  # concurrent (the model runs on a pool), but never more than the window
