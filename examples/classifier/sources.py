"""Where the mirrored frames come from: the analyzer port's far end.

- :class:`AfPacketSource`: an AF_PACKET socket on a Linux interface (root / CAP_NET_RAW), for
  example the analyzer host's ``eth0`` in a lab namespace (``netns``: the socket is opened inside
  that namespace, everything else, the API connection included, stays in ours).
- :class:`UnixPeerSource`: the peer end of a softswitch Unix-socket port (``-i N@unix:PATH``):
  a datagram socket bound at ``PATH.peer``; each datagram the switch sends is one frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
from pathlib import Path

__all__ = ["FrameSource", "AfPacketSource", "UnixPeerSource", "open_source"]

_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
_CLONE_NEWNET = 0x40000000
_MAX_FRAME = 65535


class FrameSource:
    sock: socket.socket
    name: str

    def _accept(self, addr: object) -> bool:
        return True

    async def recv(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            data, addr = await loop.sock_recvfrom(self.sock, _MAX_FRAME)
            if self._accept(addr):
                return data

    def close(self) -> None:
        self.sock.close()


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class AfPacketSource(FrameSource):
    """Frames arriving on ``ifname`` (optionally in network namespace ``netns``)."""

    def __init__(self, ifname: str, netns: str | None = None) -> None:
        self.name = f"{netns}:{ifname}" if netns else ifname
        if netns is None:
            self.sock = self._open(ifname)
            return
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)  # this thread enters the namespace just to create the socket
            try:
                self.sock = self._open(ifname)
            finally:
                _setns(own)
        finally:
            os.close(own)
            os.close(target)

    @staticmethod
    def _open(ifname: str) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        try:
            sock.bind((ifname, 0))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    def _accept(self, addr: object) -> bool:
        return not (isinstance(addr, tuple) and len(addr) > 2 and addr[2] == _PACKET_OUTGOING)


class UnixPeerSource(FrameSource):
    """The peer of softswitch's Unix-socket port at ``path`` (binds ``path.peer``)."""

    def __init__(self, path: str | Path) -> None:
        self.name = f"unix:{path}"
        self.peer_path = f"{path}.peer"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.peer_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.peer_path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setblocking(False)

    def close(self) -> None:
        super().close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.peer_path)


def open_source(spec: str) -> FrameSource:
    """``unix:PATH``, ``IFNAME`` or ``NETNS:IFNAME``."""
    if spec.startswith("unix:"):
        return UnixPeerSource(spec[5:])
    if ":" in spec:
        netns, ifname = spec.split(":", 1)
        return AfPacketSource(ifname, netns)
    return AfPacketSource(spec)
