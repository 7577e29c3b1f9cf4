"""Port backends: frames in and out of a :class:`softswitch.device.Device`.

Everything runs on the asyncio event loop (``loop.add_reader`` on non-blocking
sockets); a received frame is handed to ``Device.receive`` right away and processed
to completion on the loop thread.

* :class:`AfPacketPort` (``N@IFNAME``): an AF_PACKET raw socket bound to a Linux
  interface (needs root / CAP_NET_RAW), promiscuous, ignoring its own transmissions.
* :class:`UnixPort` (``N@unix:PATH``): rootless. A SOCK_DGRAM Unix socket bound at
  PATH; each datagram received is a frame arriving on port N; frames transmitted on
  port N are sent to ``PATH + ".peer"`` when a socket is bound there (else dropped
  and counted). :class:`UnixPortPeer` is the other end, for tests and tools.
* :class:`PcapWriter`: optional capture of every port's traffic,
  ``<dir>/port<N>_in.pcap`` and ``<dir>/port<N>_out.pcap``.

:func:`attach_ports` wires a list of specs to a device and returns what to close.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

__all__ = [
    "PortSpec", "PortSpecError", "parse_port_spec", "Port", "AfPacketPort", "UnixPort",
    "UnixPortPeer", "PcapWriter", "PortMap", "attach_ports", "restore_vlan", "MAX_FRAME",
]

log = logging.getLogger("softswitch.ports")

#: largest frame read from a socket (jumbo frames and GRO-merged frames fit)
MAX_FRAME = 65535
#: frames a Unix-socket port queues while its peer is not reading (then it drops)
TX_QUEUE_LEN = 4096
#: v1model's drop port; not usable as a real port
_DROP_PORT = 511

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
#: struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
_AUXDATA = struct.Struct("=IIIHHHH")


class PortSpecError(ValueError):
    """A malformed port specification (message names the spec and what is wrong)."""


@dataclass(frozen=True, slots=True)
class PortSpec:
    port: int
    kind: str  # "afpacket" or "unix"
    target: str  # interface name or socket path


def parse_port_spec(spec: str) -> PortSpec:
    """``N@IFNAME`` (AF_PACKET) or ``N@unix:PATH`` (Unix datagram socket)."""
    num, sep, rest = spec.partition("@")
    if not sep:
        raise PortSpecError(f"port spec {spec!r}: expected N@IFNAME or N@unix:PATH")
    try:
        port = int(num.strip(), 10)
    except ValueError:
        raise PortSpecError(f"port spec {spec!r}: port number {num!r} is not an integer") from None
    if not 0 <= port < _DROP_PORT:
        raise PortSpecError(f"port spec {spec!r}: port number must be in 0..{_DROP_PORT - 1} "
                            f"({_DROP_PORT} is v1model's drop port)")
    if rest.startswith("unix:"):
        path = rest[len("unix:"):]
        if not path:
            raise PortSpecError(f"port spec {spec!r}: empty socket path after 'unix:'")
        if len(os.fsencode(path)) + len(".peer") > 107:
            raise PortSpecError(f"port spec {spec!r}: socket path too long for AF_UNIX "
                                "(max 107 bytes including the '.peer' suffix)")
        return PortSpec(port, "unix", path)
    if not rest:
        raise PortSpecError(f"port spec {spec!r}: empty interface name")
    if len(rest) > 15 or "/" in rest or any(c.isspace() for c in rest):
        raise PortSpecError(f"port spec {spec!r}: {rest!r} is not a valid Linux interface name")
    return PortSpec(port, "afpacket", rest)


class Port(Protocol):
    port: int

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Any) -> None: ...

    def send(self, frame: bytes) -> bool: ...

    def close(self) -> None: ...


class PcapWriter:
    """Per-port pcap files (Ethernet link type, microsecond timestamps)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._files: dict[tuple[int, str], BinaryIO] = {}

    def _file(self, port: int, direction: str) -> BinaryIO:
        f = self._files.get((port, direction))
        if f is None:
            f = open(os.path.join(self.directory, f"port{port}_{direction}.pcap"), "wb")
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, MAX_FRAME, 1))
            self._files[(port, direction)] = f
        return f

    def write(self, port: int, direction: str, frame: bytes) -> None:
        """``direction`` is "in" or "out"."""
        f = self._file(port, direction)
        t = time.time()
        sec, usec = int(t), int((t % 1) * 1_000_000)
        f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
        f.write(frame)
        f.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


class _SocketPort:
    """Common reader loop of the socket backends."""

    sock: socket.socket

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Any = None
        self.rx = 0
        self.tx = 0
        self.tx_dropped = 0

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Any) -> None:
        """Start reading; ``deliver(port, frame)`` is called for each frame."""
        self._loop = loop
        self._deliver = deliver
        loop.add_reader(self.sock.fileno(), self._on_readable)

    def _accept(self, frame: bytes, addr: Any) -> bool:
        return True

    def _recv(self) -> tuple[bytes, Any]:
        return self.sock.recvfrom(MAX_FRAME)

    def _on_readable(self) -> None:
        # drain what is queued, but yield to the loop after a batch
        for _ in range(64):
            try:
                frame, addr = self._recv()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.error("port %d: receive failed: %s", self.port, e)
                return
            if not self._accept(frame, addr):
                continue
            self.rx += 1
            try:
                self._deliver(self.port, frame)
            except Exception:
                log.exception("port %d: processing a received frame failed", self.port)

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()


def restore_vlan(frame: bytes, status: int, _len: int, _snaplen: int, _mac: int, _net: int,
                 tci: int, tpid: int) -> bytes:
    """Re-insert the 802.1Q tag the kernel stripped (``tpacket_auxdata``) after the MACs."""
    if not status & TP_STATUS_VLAN_VALID or len(frame) < 12:
        return frame
    if not status & TP_STATUS_VLAN_TPID_VALID:
        tpid = 0x8100
    return frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]


class AfPacketPort(_SocketPort):
    """An AF_PACKET raw socket on ``ifname`` (root or CAP_NET_RAW)."""

    def __init__(self, port: int, ifname: str) -> None:
        super().__init__(port)
        self.ifname = ifname
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError as e:
            raise PermissionError(f"port {port}@{ifname}: AF_PACKET needs root or CAP_NET_RAW ({e})") from e
        try:
            sock.bind((ifname, 0))
            ifindex = socket.if_nametoindex(ifname)
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            with contextlib.suppress(OSError):  # Linux >= 4.20; else filtered in _accept
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            # VLAN offload moves 802.1Q tags out of the frame into packet metadata;
            # auxdata gives them back so the P4 parser sees the frame as sent
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise OSError(f"port {port}@{ifname}: cannot open interface: {e}") from e
        self.sock = sock

    def _recv(self) -> tuple[bytes, Any]:
        frame, ancdata, _flags, addr = self.sock.recvmsg(MAX_FRAME, socket.CMSG_SPACE(_AUXDATA.size))
        for level, kind, data in ancdata:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= _AUXDATA.size:
                frame = restore_vlan(frame, *_AUXDATA.unpack_from(data))
        return frame, addr

    def _accept(self, frame: bytes, addr: Any) -> bool:
        # addr = (ifname, proto, pkttype, hatype, hwaddr): skip our own transmissions
        return not (isinstance(addr, tuple) and len(addr) > 2 and addr[2] == PACKET_OUTGOING)

    def send(self, frame: bytes) -> bool:
        try:
            self.sock.send(frame)
        except (BlockingIOError, OSError) as e:
            log.warning("port %d@%s: transmit failed: %s", self.port, self.ifname, e)
            self.tx_dropped += 1
            return False
        self.tx += 1
        return True


class UnixPort(_SocketPort):
    """A SOCK_DGRAM Unix socket bound at ``path``; transmits to ``path + ".peer"``."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(port)
        self.path = path
        self.peer_path = path + ".peer"
        self._backlog: collections.deque[bytes] = collections.deque()
        with contextlib.suppress(FileNotFoundError):
            if os.path.exists(path) and not os.path.isdir(path):
                os.unlink(path)  # a stale socket from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(path)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise OSError(f"port {port}@unix:{path}: cannot bind: {e}") from e
        self.sock = sock

    def send(self, frame: bytes) -> bool:
        # A datagram socket refuses a burst once the peer's queue is full (only 10
        # datagrams by default, net.unix.max_dgram_qlen), where a real link would queue:
        # keep a bounded transmit queue and flush it when the socket is writable again.
        if self._backlog:
            return self._enqueue(frame)
        try:
            self.sock.sendto(frame, self.peer_path)
        except (FileNotFoundError, ConnectionRefusedError):
            self.tx_dropped += 1  # nobody listening: like a link that is down
            return False
        except BlockingIOError:
            return self._enqueue(frame)
        except OSError as e:
            log.warning("port %d@unix:%s: transmit failed: %s", self.port, self.path, e)
            self.tx_dropped += 1
            return False
        self.tx += 1
        return True

    def _enqueue(self, frame: bytes) -> bool:
        if len(self._backlog) >= TX_QUEUE_LEN or self._loop is None:
            self.tx_dropped += 1
            return False
        if not self._backlog:
            self._loop.add_writer(self.sock.fileno(), self._flush)
        self._backlog.append(frame)
        return True

    def _flush(self) -> None:
        while self._backlog:
            try:
                self.sock.sendto(self._backlog[0], self.peer_path)
            except BlockingIOError:
                return  # still full: wait for the next writable event
            except OSError:
                self.tx_dropped += 1  # the peer went away
            else:
                self.tx += 1
            self._backlog.popleft()
        if self._loop is not None:
            self._loop.remove_writer(self.sock.fileno())

    def close(self) -> None:
        if self._loop is not None and self._backlog:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self.sock.fileno())
        self._backlog.clear()
        super().close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class UnixPortPeer:
    """The far end of a :class:`UnixPort`: binds ``path + ".peer"``; :meth:`send` puts a
    frame on the switch's port, :meth:`recv` / :meth:`recv_sync` get the frames the
    switch transmits on it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.peer_path = path + ".peer"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.peer_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.peer_path)

    def send(self, frame: bytes) -> None:
        """Send one frame to the switch (raises FileNotFoundError / ConnectionRefusedError
        when no switch port is bound at ``path``)."""
        self.sock.sendto(frame, self.path)

    def recv_sync(self, timeout: float | None = 1.0) -> bytes | None:
        """The next frame, or None after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(MAX_FRAME)
        except (TimeoutError, BlockingIOError):
            return None

    async def recv(self, timeout: float | None = 1.0) -> bytes | None:
        """The next frame, or None after ``timeout`` seconds (asyncio)."""
        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        try:
            return await asyncio.wait_for(loop.sock_recv(self.sock, MAX_FRAME), timeout)
        except TimeoutError:
            return None

    def drain(self) -> list[bytes]:
        """All frames already queued, without waiting."""
        out = []
        self.sock.setblocking(False)
        while True:
            try:
                out.append(self.sock.recv(MAX_FRAME))
            except (BlockingIOError, InterruptedError):
                return out

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.peer_path)

    def __enter__(self) -> UnixPortPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PortMap:
    """Routes ``Device.on_transmit`` to the port backends; frames for a port without a
    backend are dropped and counted in ``device.counters["tx_no_backend"]``."""

    def __init__(self, device: Any, pcap: PcapWriter | None = None) -> None:
        self.device = device
        self.pcap = pcap
        self.ports: dict[int, Port] = {}
        self._prev = device.on_transmit
        device.on_transmit = self.transmit

    def add(self, backend: Port, loop: asyncio.AbstractEventLoop) -> None:
        if backend.port in self.ports:
            raise PortSpecError(f"port {backend.port} is given twice")
        self.ports[backend.port] = backend
        backend.start(loop, self.deliver)

    def deliver(self, port: int, frame: bytes) -> None:
        if self.pcap is not None:
            self.pcap.write(port, "in", frame)
        self.device.receive(port, frame)

    def transmit(self, port: int, frame: bytes) -> None:
        backend = self.ports.get(port)
        if backend is None:
            self.device.counters["tx_no_backend"] += 1
            return
        if not backend.send(frame):
            self.device.counters["tx_failed"] += 1
        elif self.pcap is not None:
            self.pcap.write(port, "out", frame)

    def close(self) -> None:
        for b in self.ports.values():
            b.close()
        self.ports.clear()
        if self.device.on_transmit == self.transmit:
            self.device.on_transmit = self._prev
        if self.pcap is not None:
            self.pcap.close()


def _open(spec: PortSpec) -> Port:
    if spec.kind == "unix":
        return UnixPort(spec.port, spec.target)
    return AfPacketPort(spec.port, spec.target)


def attach_ports(device: Any, specs: Iterable[str | PortSpec], *, pcap_dir: str | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> list[Any]:
    """Open every port of ``specs`` (strings are parsed), start them on ``loop`` (default:
    the running loop) and route the device's transmissions to them. Returns the
    closables (one PortMap closing all ports); on error nothing stays open."""
    loop = loop or asyncio.get_running_loop()
    parsed: Sequence[PortSpec] = [s if isinstance(s, PortSpec) else parse_port_spec(s) for s in specs]
    seen: set[int] = set()
    for s in parsed:
        if s.port in seen:
            raise PortSpecError(f"port {s.port} is given twice")
        seen.add(s.port)
    pm = PortMap(device, PcapWriter(pcap_dir) if pcap_dir else None)
    try:
        for s in parsed:
            pm.add(_open(s), loop)
    except BaseException:
        pm.close()
        raise
    return [pm]
