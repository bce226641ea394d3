from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODING_RAW: _ClassVar[Encoding]
    ENCODING_FP16: _ClassVar[Encoding]
    ENCODING_INT8: _ClassVar[Encoding]
ENCODING_RAW: Encoding
ENCODING_FP16: Encoding
ENCODING_INT8: Encoding

class Scalar(_message.Message):
    __slots__ = ("double_value", "int_value", "bool_value", "string_value")
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    double_value: float
    int_value: int
    bool_value: bool
    string_value: str
    def __init__(self, double_value: _Optional[float] = ..., int_value: _Optional[int] = ..., bool_value: bool = ..., string_value: _Optional[str] = ...) -> None: ...

class TensorMeta(_message.Message):
    __slots__ = ("name", "dtype", "shape", "encoding", "scale", "nbytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    NBYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    encoding: Encoding
    scale: float
    nbytes: int
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., encoding: _Optional[_Union[Encoding, str]] = ..., scale: _Optional[float] = ..., nbytes: _Optional[int] = ...) -> None: ...

class TensorsHeader(_message.Message):
    __slots__ = ("tensors", "total_bytes")
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    tensors: _containers.RepeatedCompositeFieldContainer[TensorMeta]
    total_bytes: int
    def __init__(self, tensors: _Optional[_Iterable[_Union[TensorMeta, _Mapping]]] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("client_id", "job_name", "num_samples", "can_evaluate")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CAN_EVALUATE_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    job_name: str
    num_samples: int
    can_evaluate: bool
    def __init__(self, client_id: _Optional[str] = ..., job_name: _Optional[str] = ..., num_samples: _Optional[int] = ..., can_evaluate: bool = ...) -> None: ...

class FitRes(_message.Message):
    __slots__ = ("round", "num_samples", "metrics", "weights")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Scalar
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Scalar, _Mapping]] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    num_samples: int
    metrics: _containers.MessageMap[str, Scalar]
    weights: TensorsHeader
    def __init__(self, round: _Optional[int] = ..., num_samples: _Optional[int] = ..., metrics: _Optional[_Mapping[str, Scalar]] = ..., weights: _Optional[_Union[TensorsHeader, _Mapping]] = ...) -> None: ...

class EvaluateRes(_message.Message):
    __slots__ = ("round", "num_samples", "loss", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Scalar
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Scalar, _Mapping]] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    round: int
    num_samples: int
    loss: float
    metrics: _containers.MessageMap[str, Scalar]
    def __init__(self, round: _Optional[int] = ..., num_samples: _Optional[int] = ..., loss: _Optional[float] = ..., metrics: _Optional[_Mapping[str, Scalar]] = ...) -> None: ...

class ParametersRes(_message.Message):
    __slots__ = ("round", "weights")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    weights: TensorsHeader
    def __init__(self, round: _Optional[int] = ..., weights: _Optional[_Union[TensorsHeader, _Mapping]] = ...) -> None: ...

class ClientError(_message.Message):
    __slots__ = ("round", "reason")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    round: int
    reason: str
    def __init__(self, round: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("hello", "fit_res", "evaluate_res", "parameters_res", "error", "chunk")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    FIT_RES_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_RES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_RES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    fit_res: FitRes
    evaluate_res: EvaluateRes
    parameters_res: ParametersRes
    error: ClientError
    chunk: Chunk
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., fit_res: _Optional[_Union[FitRes, _Mapping]] = ..., evaluate_res: _Optional[_Union[EvaluateRes, _Mapping]] = ..., parameters_res: _Optional[_Union[ParametersRes, _Mapping]] = ..., error: _Optional[_Union[ClientError, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("round", "job_name")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    round: int
    job_name: str
    def __init__(self, round: _Optional[int] = ..., job_name: _Optional[str] = ...) -> None: ...

class GetParametersIns(_message.Message):
    __slots__ = ("round",)
    ROUND_FIELD_NUMBER: _ClassVar[int]
    round: int
    def __init__(self, round: _Optional[int] = ...) -> None: ...

class FitIns(_message.Message):
    __slots__ = ("round", "config", "weights")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Scalar
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Scalar, _Mapping]] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    config: _containers.MessageMap[str, Scalar]
    weights: TensorsHeader
    def __init__(self, round: _Optional[int] = ..., config: _Optional[_Mapping[str, Scalar]] = ..., weights: _Optional[_Union[TensorsHeader, _Mapping]] = ...) -> None: ...

class EvaluateIns(_message.Message):
    __slots__ = ("round", "config", "weights")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Scalar
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Scalar, _Mapping]] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    config: _containers.MessageMap[str, Scalar]
    weights: TensorsHeader
    def __init__(self, round: _Optional[int] = ..., config: _Optional[_Mapping[str, Scalar]] = ..., weights: _Optional[_Union[TensorsHeader, _Mapping]] = ...) -> None: ...

class Rejected(_message.Message):
    __slots__ = ("round", "reason")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    round: int
    reason: str
    def __init__(self, round: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Reconnect(_message.Message):
    __slots__ = ("seconds", "reason")
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    seconds: float
    reason: str
    def __init__(self, seconds: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class Stop(_message.Message):
    __slots__ = ("round", "reason", "metrics", "weights")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Scalar
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Scalar, _Mapping]] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    reason: str
    metrics: _containers.MessageMap[str, Scalar]
    weights: TensorsHeader
    def __init__(self, round: _Optional[int] = ..., reason: _Optional[str] = ..., metrics: _Optional[_Mapping[str, Scalar]] = ..., weights: _Optional[_Union[TensorsHeader, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("welcome", "get_parameters_ins", "fit_ins", "evaluate_ins", "rejected", "reconnect", "stop", "chunk")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    GET_PARAMETERS_INS_FIELD_NUMBER: _ClassVar[int]
    FIT_INS_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_INS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    get_parameters_ins: GetParametersIns
    fit_ins: FitIns
    evaluate_ins: EvaluateIns
    rejected: Rejected
    reconnect: Reconnect
    stop: Stop
    chunk: Chunk
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., get_parameters_ins: _Optional[_Union[GetParametersIns, _Mapping]] = ..., fit_ins: _Optional[_Union[FitIns, _Mapping]] = ..., evaluate_ins: _Optional[_Union[EvaluateIns, _Mapping]] = ..., rejected: _Optional[_Union[Rejected, _Mapping]] = ..., reconnect: _Optional[_Union[Reconnect, _Mapping]] = ..., stop: _Optional[_Union[Stop, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "round", "connected_clients", "job_name")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    status: str
    round: int
    connected_clients: int
    job_name: str
    def __init__(self, status: _Optional[str] = ..., round: _Optional[int] = ..., connected_clients: _Optional[int] = ..., job_name: _Optional[str] = ...) -> None: ...
