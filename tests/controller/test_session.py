"""session.py without a switch: the Write head (device id, election id) before pre-encoded updates,
per-update error codes, stream requests (digest acks, packet-out), arbitration state changes."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from finsy.proto import p4r, rpc_code, rpc_status
from flow_support import build, codec, v4key, v6key
from google.protobuf import any_pb2
from p4fatflow.flowcodec import FlowContext
from p4fatflow.session import OK, SessionOptions, SessionState, SwitchSession, WriteError, _per_update_codes

ELECTION = (3 << 64) | 12345


class Listener:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def session_primary(self, session: SwitchSession, pipeline_pushed: bool) -> None:
        self.events.append("primary")

    async def session_not_primary(self, session: SwitchSession) -> None:
        self.events.append("not_primary")

    def digest_list(self, session: SwitchSession, msg: p4r.DigestList) -> None: ...
    def idle_timeouts(self, session: SwitchSession, msg: p4r.IdleTimeoutNotification) -> None: ...
    def packet_in(self, session: SwitchSession, msg: p4r.PacketIn) -> None: ...


def state_of(s: SwitchSession) -> SessionState:
    return s.state


def make_session(device_id: int = 9, election_id: int = ELECTION) -> tuple[SwitchSession, Listener]:
    b = build()
    listener = Listener()
    s = SwitchSession(SessionOptions("sw", "127.0.0.1:1", device_id, election_id, b.p4info, b.device_config),
                      listener)

    async def no_work() -> None:  # the pipeline check needs a switch; not tested here
        return None

    s._primary_work = no_work  # type: ignore[method-assign]
    return s, listener


class RawWrite:
    def __init__(self, error: BaseException | None = None) -> None:
        self.requests: list[bytes] = []
        self.error = error

    async def __call__(self, request: bytes, timeout: float | None = None) -> Any:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return p4r.WriteResponse()


async def primary(s: SwitchSession, raw: RawWrite) -> None:
    await s._become_primary()
    s._stub = object()
    s._raw_write = raw


@pytest.mark.parametrize("election_id", [1, ELECTION, (1 << 128) - 1])
async def test_write_wire_head_and_updates_parse_as_one_write_request(election_id: int) -> None:
    s, _ = make_session(election_id=election_id)
    raw = RawWrite()
    await primary(s, raw)
    fc = codec()
    k4, k6 = fc.index_key(*fc.key_values(v4key())), fc.index_key(*fc.key_values(v6key()))
    updates = [fc.insert(k4, FlowContext(lifetime=5)), fc.delete(k6)]
    assert await s.write_wire(updates) == [OK, OK]
    req = p4r.WriteRequest.FromString(raw.requests[0])
    assert req.device_id == 9
    assert (req.election_id.high << 64) | req.election_id.low == election_id
    assert [u.SerializeToString() for u in req.updates] == [
        p4r.WriteRequest.FromString(b"\x08\x01" + u).updates[0].SerializeToString() for u in updates]


async def test_write_wraps_protobuf_updates() -> None:
    s, _ = make_session()
    raw = RawWrite()
    await primary(s, raw)
    up = p4r.Update(type=p4r.Update.MODIFY, entity=p4r.Entity(table_entry=p4r.TableEntry(table_id=5, priority=3)))
    assert await s.write([up, up]) == [OK, OK]
    assert list(p4r.WriteRequest.FromString(raw.requests[0]).updates) == [up, up]


async def test_write_needs_primary_except_when_empty() -> None:
    s, _ = make_session()
    assert await s.write_wire([]) == []
    with pytest.raises(WriteError) as exc:
        await s.write_wire([b"x"])
    assert exc.value.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "UNAVAILABLE" in str(exc.value)


def rpc_error(code: grpc.StatusCode, codes: list[int] | None) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if codes is not None:
        st = rpc_status.Status(code=code.value[0], message="batch failed")
        for c in codes:
            a = any_pb2.Any()
            a.Pack(p4r.Error(canonical_code=c, message=f"code {c}"))
            st.details.append(a)
        trailing.add("grpc-status-details-bin", st.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details="batch failed")


async def test_per_update_codes_from_the_error_details() -> None:
    s, _ = make_session()
    raw = RawWrite(rpc_error(grpc.StatusCode.UNKNOWN, [rpc_code.OK, rpc_code.ALREADY_EXISTS, rpc_code.OK,
                                                       rpc_code.RESOURCE_EXHAUSTED]))
    await primary(s, raw)
    assert await s.write_wire([b"", b"", b"", b""]) == [OK, 6, OK, 8]


def test_per_update_codes_without_details_is_a_write_error() -> None:
    with pytest.raises(WriteError) as exc:
        _per_update_codes(rpc_error(grpc.StatusCode.PERMISSION_DENIED, None), 3)
    assert exc.value.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    # details beyond the batch are ignored
    assert _per_update_codes(rpc_error(grpc.StatusCode.UNKNOWN, [OK, 5, 3]), 2) == [OK, 5]


async def test_digest_ack_and_packet_out_requests() -> None:
    s, _ = make_session()
    s.ack_digest(17, 99)
    s.packet_out(b"frame", {1: 300, 2: 0})
    ack, out = s._outbox.get_nowait(), s._outbox.get_nowait()
    assert ack is not None and out is not None
    assert (ack.digest_ack.digest_id, ack.digest_ack.list_id) == (17, 99)
    assert out.packet.payload == b"frame"
    assert [(m.metadata_id, m.value) for m in out.packet.metadata] == [(1, b"\x01\x2c"), (2, b"\x00")]


async def test_arbitration_primary_backup_and_lost_primary() -> None:
    s, listener = make_session()
    assert s._arbitration_request().arbitration.election_id.high == ELECTION >> 64
    ok = p4r.MasterArbitrationUpdate(device_id=9)
    ok.election_id.high, ok.election_id.low = ELECTION >> 64, ELECTION & ((1 << 64) - 1)
    await s._arbitration(ok)
    assert s.state is SessionState.PRIMARY and s.is_primary and s.primary_election_id == ELECTION
    await s.wait_primary(timeout=1)
    other = p4r.MasterArbitrationUpdate(device_id=9)
    other.status.code = rpc_code.ALREADY_EXISTS
    other.election_id.low = 1 << 40
    await s._arbitration(other)
    assert state_of(s) is SessionState.BACKUP and s.primary_election_id == 1 << 40
    assert listener.events == ["not_primary"]
    gone = p4r.MasterArbitrationUpdate(device_id=9)
    gone.status.code = rpc_code.NOT_FOUND
    await s._arbitration(gone)
    assert state_of(s) is SessionState.BACKUP and s.primary_election_id is None
    again = s._outbox.get_nowait()
    assert again is not None and again.arbitration.device_id == 9  # asks again
    await s.stop()
    assert state_of(s) is SessionState.DOWN
