"""StreamChannel misuse on a real server with the fatflow pipeline: refused arbitrations
end only that stream, bad packet-outs and acks get stream errors (or are ignored), and
the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from finsy.proto import p4r, rpc_code
from test_robust_harness import (
    ELECTION,
    ServerThread,
    Stream,
    arbitration,
    assert_alive,
    serve_fatflow,
)


@pytest.fixture(scope="module")
def switch() -> Iterator[ServerThread]:
    yield from serve_fatflow(5)


def _alive(s: ServerThread) -> None:
    assert_alive(s, 5)


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


def test_bad_stream_messages_get_stream_errors(switch: ServerThread) -> None:
    s = Stream(switch)
    # packet-out before arbitration
    m = p4r.StreamMessageRequest()
    m.packet.payload = b"\x00" * 20
    s.send(m)
    r = s.get()
    assert isinstance(r, p4r.StreamMessageResponse) and r.error.canonical_code == rpc_code.PERMISSION_DENIED, r
    assert r.error.packet_out.packet_out == m.packet
    # an empty message
    s.send(p4r.StreamMessageRequest())
    r = s.get()
    assert isinstance(r, p4r.StreamMessageResponse) and r.error.canonical_code == rpc_code.INVALID_ARGUMENT, r
    # become a backup (the harness holds the primary), then primary
    s.send(arbitration(0, 3))
    r = s.get()
    assert isinstance(r, p4r.StreamMessageResponse) and r.arbitration.status.code == rpc_code.ALREADY_EXISTS, r
    s.send(arbitration(0, ELECTION + 1))
    r = s.get()
    assert isinstance(r, p4r.StreamMessageResponse) and r.arbitration.status.code == rpc_code.OK, r
    # packet-out with unknown / duplicate / oversize metadata
    for mds in ([(99, b"\x01")], [(1, b"\x01"), (1, b"\x02")], [(1, b"\x02\x00")], [(2, b"")]):
        m = p4r.StreamMessageRequest()
        m.packet.payload = b"\x00" * 20
        for mid, v in mds:
            m.packet.metadata.add(metadata_id=mid, value=v)
        s.send(m)
        r = s.get()
        assert isinstance(r, p4r.StreamMessageResponse), (mds, r)
        assert r.error.canonical_code in (rpc_code.INVALID_ARGUMENT, rpc_code.OUT_OF_RANGE), (mds, r)
        assert r.error.packet_out.packet_out == m.packet
    # digest acks for unknown lists / digests: ignored
    for did, lid in ((0, 0), (12345, 7), (397109657, 2**64 - 1)):
        m = p4r.StreamMessageRequest()
        m.digest_ack.digest_id, m.digest_ack.list_id = did, lid
        s.send(m)
    # a role config (unsupported) on a live stream
    m = arbitration(0, ELECTION + 1)
    m.arbitration.role.name = "r"
    m.arbitration.role.config.type_url = "x"
    s.send(m)
    r = s.get()
    assert isinstance(r, grpc.RpcError) and r.code() == grpc.StatusCode.UNIMPLEMENTED, r
    s.close()
    # the harness stream is primary again and still works
    _alive(switch)
    e = p4r.Entity()
    e.table_entry.SetInParent()
    switch.read(e)
    while True:
        got = switch.stream_msg(timeout=1)
        assert isinstance(got, p4r.StreamMessageResponse), got
        if got.arbitration.status.code == rpc_code.OK and got.arbitration.election_id.low == ELECTION:
            break




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
