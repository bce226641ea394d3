from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectRef(_message.Message):
    __slots__ = ("kind", "namespace", "name", "resource_version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    namespace: str
    name: str
    resource_version: str
    def __init__(self, kind: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., resource_version: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("node", "objects", "outbox_epoch")
    NODE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_EPOCH_FIELD_NUMBER: _ClassVar[int]
    node: str
    objects: _containers.RepeatedCompositeFieldContainer[ObjectRef]
    outbox_epoch: str
    def __init__(self, node: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[ObjectRef, _Mapping]]] = ..., outbox_epoch: _Optional[str] = ...) -> None: ...

class ObjectAck(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ...) -> None: ...

class ObjectAcks(_message.Message):
    __slots__ = ("refs",)
    REFS_FIELD_NUMBER: _ClassVar[int]
    refs: _containers.RepeatedCompositeFieldContainer[ObjectRef]
    def __init__(self, refs: _Optional[_Iterable[_Union[ObjectRef, _Mapping]]] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("seq", "kind", "namespace", "name", "payload")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: str
    namespace: str
    name: str
    payload: bytes
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., payload: _Optional[bytes] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class UpMessage(_message.Message):
    __slots__ = ("hello", "ack", "report", "ping", "pong", "acks")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    ack: ObjectAck
    report: Report
    ping: Ping
    pong: Ping
    acks: ObjectAcks
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., ack: _Optional[_Union[ObjectAck, _Mapping]] = ..., report: _Optional[_Union[Report, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., pong: _Optional[_Union[Ping, _Mapping]] = ..., acks: _Optional[_Union[ObjectAcks, _Mapping]] = ...) -> None: ...

class Upsert(_message.Message):
    __slots__ = ("ref", "object", "encoding")
    REF_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    object: bytes
    encoding: str
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., object: _Optional[bytes] = ..., encoding: _Optional[str] = ...) -> None: ...

class Delete(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ("seq", "accepted", "duplicate", "reason")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    accepted: bool
    duplicate: bool
    reason: str
    def __init__(self, seq: _Optional[int] = ..., accepted: bool = ..., duplicate: bool = ..., reason: _Optional[str] = ...) -> None: ...

class ResyncDone(_message.Message):
    __slots__ = ("upserts", "deletes")
    UPSERTS_FIELD_NUMBER: _ClassVar[int]
    DELETES_FIELD_NUMBER: _ClassVar[int]
    upserts: int
    deletes: int
    def __init__(self, upserts: _Optional[int] = ..., deletes: _Optional[int] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, messages: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DownMessage(_message.Message):
    __slots__ = ("upsert", "delete", "report_ack", "resync_done", "ping", "pong", "batch")
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    REPORT_ACK_FIELD_NUMBER: _ClassVar[int]
    RESYNC_DONE_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    upsert: Upsert
    delete: Delete
    report_ack: ReportAck
    resync_done: ResyncDone
    ping: Ping
    pong: Ping
    batch: Batch
    def __init__(self, upsert: _Optional[_Union[Upsert, _Mapping]] = ..., delete: _Optional[_Union[Delete, _Mapping]] = ..., report_ack: _Optional[_Union[ReportAck, _Mapping]] = ..., resync_done: _Optional[_Union[ResyncDone, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., pong: _Optional[_Union[Ping, _Mapping]] = ..., batch: _Optional[_Union[Batch, _Mapping]] = ...) -> None: ...
