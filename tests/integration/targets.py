"""The switch a test runs against, chosen by ``FATFLOW_TARGET`` (softswitch by default, ``bmv2`` for
simple_switch_grpc with the p4c-compiled pipeline from ``make p4``).

Ports: softswitch uses Unix datagram sockets by default (no root needed);
``FATFLOW_PORTS=veth`` (and always for bmv2) gives each switch port a veth pair in the root
namespace, the test holding the far end with an AF_PACKET socket. Every target can be killed and
restarted (switch-restart tests), and everything is removed afterwards, also on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from softswitch.launch import PipelineBuild, compile_pipeline, free_port
from softswitch.ports import UnixPortPeer

__all__ = ["TARGET", "Peer", "SwitchProcess", "pipeline_for", "switch_process", "target_skip_reason"]

REPO = Path(__file__).resolve().parents[2]
P4_MAIN = REPO / "p4src" / "fatflow_v1model.p4"
TARGET = os.environ.get("FATFLOW_TARGET", "softswitch")
PORTS_MODE = "veth" if TARGET == "bmv2" else os.environ.get("FATFLOW_PORTS", "unix")
_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4


def target_skip_reason() -> str | None:
    if TARGET not in ("softswitch", "bmv2"):
        return f"FATFLOW_TARGET={TARGET!r}: expected softswitch or bmv2"
    if TARGET == "bmv2":
        if shutil.which("simple_switch_grpc") is None:
            return "FATFLOW_TARGET=bmv2 but simple_switch_grpc is not on PATH"
        if not (REPO / "build" / "fatflow.json").exists():
            return "FATFLOW_TARGET=bmv2 needs build/fatflow.json: run 'make p4' where p4c is installed"
    if PORTS_MODE == "veth" and os.geteuid() != 0:
        return "veth ports need root"
    return None


def pipeline_for(out_dir: Path) -> PipelineBuild:
    """(device config, P4Info) of the target: softswitch's compile, or p4c's files for BMv2."""
    if TARGET == "bmv2":
        return PipelineBuild(REPO / "build" / "fatflow.json", REPO / "build" / "fatflow.p4info.txtpb")
    return compile_pipeline(out_dir, P4_MAIN)


class Peer(Protocol):
    def send(self, frame: bytes) -> None: ...
    async def recv(self, timeout: float | None = 1.0) -> bytes | None: ...
    def drain(self) -> list[bytes]: ...
    def close(self) -> None: ...


class VethPeer:
    """The far end of a veth pair, as an AF_PACKET socket (frames we send are not echoed back)."""

    def __init__(self, ifname: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        self.sock.bind((ifname, 0))
        self.sock.setblocking(False)

    def send(self, frame: bytes) -> None:
        # Non-blocking socket: a full send queue (a burst) waits for room instead of failing.
        for _ in range(5000):
            try:
                self.sock.send(frame)
                return
            except (BlockingIOError, InterruptedError):
                select.select([], [self.sock], [], 0.01)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                time.sleep(0.001)
        raise TimeoutError("veth peer: no room to send for 50 s")

    def _incoming(self) -> bytes | None:
        while True:
            data, addr = self.sock.recvfrom(65535)
            if addr[2] != _PACKET_OUTGOING:
                return data

    async def recv(self, timeout: float | None = 1.0) -> bytes | None:
        deadline = time.monotonic() + (timeout or 0)
        while True:
            try:
                got = self._incoming()
                if got is not None:
                    return got
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.002)

    def drain(self) -> list[bytes]:
        out = []
        while True:
            try:
                got = self._incoming()
            except BlockingIOError:
                return out
            if got is not None:
                out.append(got)

    def close(self) -> None:
        self.sock.close()


@dataclass
class SwitchProcess:
    """A running target: address, ports and the means to kill and restart it."""

    kind: str
    workdir: Path
    ports: tuple[int, ...]
    device_id: int = 1
    cpu_port: int = 255
    address: str = ""
    peers: dict[int, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _ifaces: dict[int, str] = field(default_factory=dict)
    _sockdir: Path | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _command(self) -> list[str]:
        if self.kind == "bmv2":
            ifs = [a for p in self.ports for a in ("-i", f"{p}@{self._ifaces[p]}")]
            return [shutil.which("simple_switch_grpc") or "simple_switch_grpc", "--device-id", str(self.device_id),
                    *ifs, "--no-p4", "--", "--grpc-server-addr", self.address, "--cpu-port", str(self.cpu_port)]
        if PORTS_MODE == "veth":
            ifs = [a for p in self.ports for a in ("-i", f"{p}@{self._ifaces[p]}")]
        else:
            assert self._sockdir is not None
            ifs = [a for p in self.ports for a in ("-i", f"{p}@unix:{self._sockdir / f'p{p}'}")]
        return [sys.executable, "-m", "softswitch", "--device-id", str(self.device_id), "--cpu-port",
                str(self.cpu_port), "--grpc-server-addr", self.address, "--log-level", "info", *ifs, "--no-p4"]

    def start(self) -> None:
        """Start (or restart after :meth:`kill`) the switch process, empty, on the same address."""
        assert self.process is None or self.process.poll() is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        host, port = self.address.rsplit(":", 1)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not listen within 60 s:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        if PORTS_MODE == "unix" and not self.peers:
            assert self._sockdir is not None
            for p in self.ports:
                self.peers[p] = UnixPortPeer(str(self._sockdir / f"p{p}"))

    def kill(self) -> None:
        """SIGKILL the switch (all its state is gone, as when a switch crashes)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def switch_process(workdir: Path, ports: Sequence[int] = (1, 2, 3, 4), *, device_id: int = 1,
                   start: bool = True) -> Iterator[SwitchProcess]:
    """A target of kind $FATFLOW_TARGET with ``ports``; removed (process, interfaces, sockets) at
    the end whatever happens."""
    sp = SwitchProcess(TARGET, workdir, tuple(ports), device_id=device_id, address=f"127.0.0.1:{free_port()}")
    tag = f"{os.getpid() % 10000}{time.monotonic_ns() % 1000:03d}"
    try:
        if PORTS_MODE == "veth":
            for p in ports:
                sw_if, peer_if = f"fs{tag}p{p}", f"fp{tag}p{p}"
                _ip("link", "add", sw_if, "type", "veth", "peer", "name", peer_if)
                sp._ifaces[p] = sw_if
                for ifname in (sw_if, peer_if):
                    subprocess.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{ifname}.disable_ipv6=1"],
                                   check=False, capture_output=True)
                    _ip("link", "set", ifname, "mtu", "16000", "up")  # jumbo frames of the fuzz tests
                sp.peers[p] = VethPeer(peer_if)
        else:
            sp._sockdir = Path(os.environ.get("FATFLOW_SOCK_DIR", "/tmp")) / f"ffit-{tag}"
            sp._sockdir.mkdir(parents=True)
        if start:
            sp.start()
        yield sp
    finally:
        sp.stop()
        for peer in sp.peers.values():
            peer.close()
        for ifname in sp._ifaces.values():
            subprocess.run(["ip", "link", "del", ifname], check=False, capture_output=True)
        if sp._sockdir is not None:
            shutil.rmtree(sp._sockdir, ignore_errors=True)
