"""StreamChannel misuse on a real server with the fatflow pipeline: refused arbitrations
end only that stream, bad packet-outs and acks get stream errors (or are ignored), and
the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from finsy.proto import p4r, rpc_code
from test_robust_harness import ServerThread, Stream, arbitration, fatflow_build


@pytest.fixture(scope="module")
def switch() -> Iterator[ServerThread]:
    config, info = fatflow_build()
    s = ServerThread()
    s.set_pipeline(config, info, cookie=5)
    yield s
    s.close()


def _alive(s: ServerThread) -> None:
    assert s.stub.Capabilities(p4r.CapabilitiesRequest(), timeout=5).p4runtime_api_version
    assert s.cookie() == 5


def test_arbitration_with_wrong_device_id_ends_that_stream_only(switch: ServerThread) -> None:
    s = Stream(switch)
    s.send(arbitration(42, 1))
    err = s.get()
    assert isinstance(err, grpc.RpcError), err
    assert err.code() == grpc.StatusCode.NOT_FOUND and "42" in (err.details() or "")
    assert s.get() is None
    s.close()
    _alive(switch)


def test_arbitration_without_election_id(switch: ServerThread) -> None:
    s = Stream(switch)
    s.send(arbitration(0, None))
    err = s.get()
    assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    s.close()
    _alive(switch)


def test_empty_stream_message_is_invalid_argument(switch: ServerThread) -> None:
    s = Stream(switch)
    s.send(p4r.StreamMessageRequest())
    r = s.get()
    assert isinstance(r, p4r.StreamMessageResponse), r
    assert r.error.canonical_code == rpc_code.INVALID_ARGUMENT and "empty" in r.error.message, r
    s.close()
    _alive(switch)


def test_refused_arbitration_after_other_messages_ends_the_stream(switch: ServerThread) -> None:
    # regression: the stream was aborted from the reader task, which raced with the
    # RPC's own task and could leave the stream open and silent
    for _ in range(10):
        s = Stream(switch)
        s.send(p4r.StreamMessageRequest())
        s.send(arbitration(1, 1))
        r = s.get()
        assert isinstance(r, p4r.StreamMessageResponse) and r.error.canonical_code == rpc_code.INVALID_ARGUMENT
        assert "empty" in r.error.message
        err = s.get()
        assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.NOT_FOUND, err
        assert s.get() is None
        s.close()
    _alive(switch)
