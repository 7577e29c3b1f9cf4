"""StreamChannel clients: their bounded outboxes and primary arbitration.

A client that does not read its stream (a slow or stuck controller) must not make the
switch's memory grow: gRPC's flow control stops the RPC from taking more messages
from the outbox, and the outbox holds at most ``max_messages`` messages and
``max_bytes`` bytes. Beyond that, *reports* are dropped and counted per kind
(``packet``: packet-in, ``digest``, ``idle_timeout_notification``, ``error``: stream
errors answering the client's own packet-outs). PI does the same for idle-timeout
notifications (its IdleTimeoutBuffer drops them when its queue is full and counts
``drop_count``). Arbitration updates and the end of the stream are never dropped: there
is at most one per arbitration event, and losing one would leave a controller wrong
about who is primary.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from typing import Union

from finsy.proto import p4r, rpc_code

from softswitch.runtime.errors import Code, P4RTError

__all__ = ["StreamClient", "Sessions", "u128", "set_u128", "MAX_MESSAGES", "MAX_BYTES"]

#: defaults of the outbox bounds (per client)
MAX_MESSAGES = 4096
MAX_BYTES = 32 << 20

#: what the StreamChannel RPC takes from an outbox: a message to send, a status to end
#: the stream with, or None to end it normally
Outgoing = Union[p4r.StreamMessageResponse, P4RTError, None]  # noqa: UP007


def u128(v: p4r.Uint128) -> int:
    return (v.high << 64) | v.low


def set_u128(out: p4r.Uint128, value: int) -> None:
    out.high = value >> 64
    out.low = value & 0xFFFFFFFFFFFFFFFF


class StreamClient:
    """One open StreamChannel and its outbox."""

    def __init__(self, peer: str = "", *, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES) -> None:
        self.peer = peer
        self.election_id: int | None = None
        self.role = ""
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._out: deque[tuple[Outgoing, int]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._ended = False
        #: reports dropped because the outbox was full, by kind
        self.dropped: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._out)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def send(self, msg: p4r.StreamMessageResponse) -> bool:
        """Queue a report; False (and counted) when the outbox is full or the stream ended."""
        if self._ended:
            return False
        size = msg.ByteSize()
        if len(self._out) >= self.max_messages or self._bytes + size > self.max_bytes:
            self.dropped[msg.WhichOneof("update") or "empty"] += 1
            return False
        self._put(msg, size)
        return True

    def send_control(self, msg: p4r.StreamMessageResponse) -> None:
        """Queue a message that is never dropped (arbitration updates)."""
        if not self._ended:
            self._put(msg, msg.ByteSize())

    def end(self, error: P4RTError | None = None) -> None:
        """End the stream after what is queued (with ``error`` as its status)."""
        if not self._ended:
            self._put(error, 0)
            self._ended = True

    def _put(self, item: Outgoing, size: int) -> None:
        self._out.append((item, size))
        self._bytes += size
        self._ready.set()

    async def get(self) -> Outgoing:
        while not self._out:
            self._ready.clear()
            await self._ready.wait()
        item, size = self._out.popleft()
        self._bytes -= size
        return item


class Sessions:
    """The open streams of one device and who is primary per role."""

    def __init__(self, device_id: int) -> None:
        self.device_id = device_id
        self.clients: list[StreamClient] = []
        #: drops of the streams already closed
        self._closed_dropped: Counter[str] = Counter()

    def primary(self, role: str = "") -> StreamClient | None:
        best: StreamClient | None = None
        best_id = -1
        for c in self.clients:
            if c.role == role and c.election_id is not None and c.election_id > best_id:
                best, best_id = c, c.election_id
        return best

    def arbitration_msg(self, client: StreamClient) -> p4r.StreamMessageResponse:
        primary = self.primary(client.role)
        msg = p4r.StreamMessageResponse()
        a = msg.arbitration
        a.device_id = self.device_id
        if client.role:
            a.role.name = client.role
        if primary is not None and primary.election_id is not None:
            set_u128(a.election_id, primary.election_id)
        if primary is None:
            a.status.code = rpc_code.NOT_FOUND
            a.status.message = "no primary"
        elif primary is client:
            a.status.code = rpc_code.OK
            a.status.message = "you are the primary"
        else:
            a.status.code = rpc_code.ALREADY_EXISTS
            a.status.message = "a client with a higher election id is primary"
        return msg

    def announce(self, role: str) -> None:
        for c in self.clients:
            if c.role == role and c.election_id is not None:
                c.send_control(self.arbitration_msg(c))

    def remove(self, client: StreamClient) -> None:
        if client in self.clients:
            self.clients.remove(client)
            self._closed_dropped.update(client.dropped)
        if client.election_id is not None:
            self.announce(client.role)

    def check_primary(self, device_id: int, election_id: p4r.Uint128, role: str) -> None:
        if device_id != self.device_id:
            raise P4RTError(Code.NOT_FOUND, f"device id {device_id} is not this device ({self.device_id})")
        primary = self.primary(role)
        if primary is None:
            raise P4RTError(Code.PERMISSION_DENIED, "no primary client: open a StreamChannel and send "
                                                    "a MasterArbitrationUpdate first")
        if primary.election_id != u128(election_id):
            raise P4RTError(Code.PERMISSION_DENIED,
                            f"election id {u128(election_id)} is not the primary's ({primary.election_id})")

    def send_to_primary(self, msg: p4r.StreamMessageResponse) -> bool:
        primary = self.primary("")
        return primary is not None and primary.send(msg)

    def arbitrate(self, client: StreamClient, a: p4r.MasterArbitrationUpdate) -> P4RTError | None:
        if a.device_id != self.device_id:
            return P4RTError(Code.NOT_FOUND, f"device id {a.device_id} is not this device ({self.device_id})")
        role = a.role.name if a.HasField("role") else ""
        if a.HasField("role") and a.role.HasField("config"):
            return P4RTError(Code.UNIMPLEMENTED, "role configs are not supported")
        election = u128(a.election_id) if a.HasField("election_id") else None
        if election is None:
            return P4RTError(Code.INVALID_ARGUMENT, "MasterArbitrationUpdate without election_id")
        for c in self.clients:
            if c is not client and c.role == role and c.election_id == election:
                return P4RTError(Code.INVALID_ARGUMENT,
                                 f"election id {election} is already used by another client")
        old_role = client.role
        old_primary = self.primary(role)
        client.role, client.election_id = role, election
        if old_role != role:
            self.announce(old_role)
        if self.primary(role) is not old_primary:
            self.announce(role)  # everybody in the role learns the new primary
        else:
            client.send_control(self.arbitration_msg(client))
        return None

    def dropped(self) -> Counter[str]:
        """Reports dropped for full outboxes since the server started, by kind."""
        total: Counter[str] = Counter(self._closed_dropped)
        for c in self.clients:
            total.update(c.dropped)
        return total
