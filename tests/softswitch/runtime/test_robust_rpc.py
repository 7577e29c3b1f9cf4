"""Garbage on every RPC of a real server with the fatflow pipeline: random bytes,
random (valid protobuf, nonsense content) messages, and bad StreamChannel messages.
Each gets a clean gRPC error or stream error; the server keeps serving and its state
is untouched by what it refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from finsy.proto import p4r, rpc_code
from google.protobuf import descriptor as _d
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robust_harness import (
    ELECTION,
    ServerThread,
    Stream,
    arbitration,
    assert_alive,
    serve_fatflow,
)

EXAMPLES = int(os.environ.get("SOFTSWITCH_FUZZ_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
METHODS = {
    "Write": (p4r.WriteRequest, p4r.WriteResponse, "unary"),
    "Read": (p4r.ReadRequest, p4r.ReadResponse, "stream"),
    "SetForwardingPipelineConfig": (p4r.SetForwardingPipelineConfigRequest,
                                    p4r.SetForwardingPipelineConfigResponse, "unary"),
    "GetForwardingPipelineConfig": (p4r.GetForwardingPipelineConfigRequest,
                                    p4r.GetForwardingPipelineConfigResponse, "unary"),
    "Capabilities": (p4r.CapabilitiesRequest, p4r.CapabilitiesResponse, "unary"),
}
# codes a refusal may have; INTERNAL and UNKNOWN would be bugs (UNKNOWN only for Write's
# per-update errors, which are checked separately)
CLEAN = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.OUT_OF_RANGE,
         grpc.StatusCode.ALREADY_EXISTS}


@pytest.fixture(scope="module")
def switch() -> Iterator[ServerThread]:
    yield from serve_fatflow(5)


def _alive(s: ServerThread) -> None:
    assert_alive(s, 5)


def _repeated(f: _d.FieldDescriptor) -> bool:
    return bool(f.is_repeated) if hasattr(f, "is_repeated") else f.label == _d.FieldDescriptor.LABEL_REPEATED


@st.composite
def _message(draw: st.DrawFn, desc: _d.Descriptor, depth: int = 0) -> dict[str, Any]:
    """Random field values for a message type (a dict for ``_fill``)."""
    out: dict[str, Any] = {}
    fields = [f for f in desc.fields if (depth < 4 or f.type != _d.FieldDescriptor.TYPE_MESSAGE)
              and not (f.message_type is not None and f.message_type.GetOptions().map_entry)]
    if not fields:
        return out
    for f in draw(st.lists(st.sampled_from(fields), max_size=4, unique_by=lambda f: f.name)):
        n = draw(st.integers(1, 3)) if _repeated(f) else 1
        vals = [draw(_scalar(f, depth)) for _ in range(n)]
        out[f.name] = vals if _repeated(f) else vals[0]
    return out


def _scalar(f: _d.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    T = _d.FieldDescriptor
    if f.type == T.TYPE_MESSAGE:
        if f.message_type.GetOptions().map_entry or f.message_type.full_name == "google.protobuf.Any":
            return st.just({})
        return _message(f.message_type, depth + 1)
    if f.type == T.TYPE_ENUM:
        return st.sampled_from([v.number for v in f.enum_type.values] + [99])
    if f.type == T.TYPE_BOOL:
        return st.booleans()
    if f.type == T.TYPE_STRING:
        return st.text(max_size=8)
    if f.type == T.TYPE_BYTES:
        return st.one_of(st.binary(max_size=20), st.sampled_from([b"", b"\x00", b"\x01", b"\x00\x00\x01"]))
    if f.type in (T.TYPE_INT32, T.TYPE_SINT32, T.TYPE_SFIXED32):
        return st.one_of(st.integers(-2, 3), st.integers(-(2**31), 2**31 - 1))
    if f.type in (T.TYPE_INT64, T.TYPE_SINT64, T.TYPE_SFIXED64):
        return st.one_of(st.integers(-2, 3), st.integers(-(2**63), 2**63 - 1))
    if f.type in (T.TYPE_UINT32, T.TYPE_FIXED32):
        return st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1))
    if f.type in (T.TYPE_UINT64, T.TYPE_FIXED64):
        return st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1))
    return st.floats(allow_nan=False)


def _fill(msg: Message, values: dict[str, Any]) -> Message:
    for name, v in values.items():
        f = msg.DESCRIPTOR.fields_by_name[name]
        if f.type == _d.FieldDescriptor.TYPE_MESSAGE:
            if _repeated(f):
                for item in v:
                    _fill(getattr(msg, name).add(), item)
            else:
                getattr(msg, name).SetInParent()
                _fill(getattr(msg, name), v)
        elif _repeated(f):
            getattr(msg, name).extend(v)
        else:
            setattr(msg, name, v)
    return msg


def _call(s: ServerThread, method: str, payload: bytes) -> grpc.RpcError | None:
    _, resp_t, kind = METHODS[method]
    path = f"/p4.v1.P4Runtime/{method}"
    try:
        if kind == "unary":
            s.channel.unary_unary(path, request_serializer=None, response_deserializer=resp_t.FromString)(
                payload, timeout=30)
        else:
            list(s.channel.unary_stream(path, request_serializer=None, response_deserializer=resp_t.FromString)(
                payload, timeout=30))
    except grpc.RpcError as e:
        return e
    return None


@SETTINGS
@given(method=st.sampled_from(sorted(METHODS)), payload=st.binary(max_size=200))
def test_random_bytes(switch: ServerThread, method: str, payload: bytes) -> None:
    before = switch.read_all_tables()
    err = _call(switch, method, payload)
    if err is not None:
        assert err.code() != grpc.StatusCode.UNAVAILABLE, err
        assert err.code() in CLEAN | {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}, err
        if err.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            # only for bytes that are not a message at all (grpc's own deserialization error)
            req_t = METHODS[method][0]
            with pytest.raises(Exception):  # noqa: B017
                req_t.FromString(payload)
    _alive(switch)
    if method in ("Write", "SetForwardingPipelineConfig"):
        assert switch.read_all_tables() == before


@SETTINGS
@given(data=st.data(), method=st.sampled_from(sorted(METHODS)), primary=st.booleans())
def test_random_messages(switch: ServerThread, data: st.DataObject, method: str, primary: bool) -> None:
    req_t = METHODS[method][0]
    msg = _fill(req_t(), data.draw(_message(req_t.DESCRIPTOR)))
    if primary and method in ("Write", "SetForwardingPipelineConfig"):
        msg.device_id = 0  # type: ignore[attr-defined]
        msg.election_id.high, msg.election_id.low = 0, ELECTION  # type: ignore[attr-defined]
        if method == "SetForwardingPipelineConfig":
            msg.action = p4r.SetForwardingPipelineConfigRequest.VERIFY  # type: ignore[attr-defined]
    if method in ("Read", "GetForwardingPipelineConfig") and primary:
        msg.device_id = 0  # type: ignore[attr-defined]
    err = _call(switch, method, msg.SerializeToString())
    if err is not None:
        if method == "Write" and err.code() == grpc.StatusCode.UNKNOWN:
            codes = switch.write(list(msg.updates))  # type: ignore[attr-defined]
            assert rpc_code.INTERNAL not in codes and rpc_code.UNKNOWN not in codes, codes
        else:
            assert err.code() in CLEAN, (err.code(), err.details(), msg)
    _alive(switch)


@SETTINGS
@given(data=st.data())
def test_random_stream_messages(switch: ServerThread, data: st.DataObject) -> None:
    s = Stream(switch)
    try:
        for _ in range(data.draw(st.integers(1, 4))):
            msg = _fill(p4r.StreamMessageRequest(), data.draw(_message(p4r.StreamMessageRequest.DESCRIPTOR)))
            if msg.WhichOneof("update") == "arbitration":
                msg.arbitration.election_id.high = 1  # never above the harness primary... below:
                msg.arbitration.election_id.high = 0
                msg.arbitration.election_id.low = min(msg.arbitration.election_id.low, ELECTION - 1) or 1
            s.send(msg)
        s.send(arbitration(0, 1))  # a well-formed backup arbitration: answered unless the stream ended
        while True:
            r = s.get(timeout=5)
            if r is None:
                break
            if isinstance(r, grpc.RpcError):
                assert r.code() in CLEAN, (r.code(), r.details())
                continue
            if r.WhichOneof("update") == "error":
                assert r.error.canonical_code not in (rpc_code.INTERNAL, rpc_code.UNKNOWN), r
            if r.WhichOneof("update") == "arbitration" and r.arbitration.election_id.low == ELECTION:
                break
    finally:
        s.close()
    _alive(switch)



@SETTINGS
@given(chunks=st.lists(st.binary(max_size=64), min_size=1, max_size=4))
def test_random_bytes_on_the_stream(switch: ServerThread, chunks: list[bytes]) -> None:
    call = switch.channel.stream_stream("/p4.v1.P4Runtime/StreamChannel", request_serializer=None,
                                        response_deserializer=p4r.StreamMessageResponse.FromString)
    try:
        for m in call(iter(chunks), timeout=5):
            assert m.WhichOneof("update") in ("error", "arbitration"), m
            if m.WhichOneof("update") == "error":
                assert m.error.canonical_code not in (rpc_code.INTERNAL, rpc_code.UNKNOWN), m
    except grpc.RpcError as e:
        assert e.code() != grpc.StatusCode.UNAVAILABLE, e
        assert e.code() in CLEAN | {grpc.StatusCode.INTERNAL,
                                    grpc.StatusCode.CANCELLED}, (e.code(), e.details())
        if e.code() == grpc.StatusCode.INTERNAL:  # only grpc's own "could not deserialize"
            assert any(_undecodable(c) for c in chunks), (e.details(), chunks)
    _alive(switch)


def _undecodable(data: bytes) -> bool:
    try:
        p4r.StreamMessageRequest.FromString(data)
    except Exception:
        return True
    return False
