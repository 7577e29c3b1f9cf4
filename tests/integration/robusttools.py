"""Helpers of the robustness tests (test_robust_*.py) and bench/bench_fuzz.py: sending many frames
while collecting what comes out, watching logs for errors, reading the switch's tables with a plain
P4Runtime client, certificates made with openssl, a TCP proxy that can stall."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from finsy.proto import p4r, p4r_grpc
from targets import SwitchProcess

__all__ = ["pump", "ErrorLog", "read_entries", "make_certs", "Certs", "StallProxy", "rss_kib"]


async def pump(target: SwitchProcess, port: int, frames: Iterable[bytes], *, batch: int = 16,
               quiet_s: float = 0.3, timeout_s: float = 600.0) -> list[tuple[int, bytes]]:
    """Send ``frames`` into ``port`` as fast as the switch takes them (a Unix datagram socket never
    loses a frame: a full queue makes the sender wait), draining every port meanwhile so the
    switch's transmit queues never overflow; returns every (port, frame) that came out, once the
    switch has been quiet for ``quiet_s``."""
    peer = target.peers[port]
    out: list[tuple[int, bytes]] = []

    def drain() -> int:
        n = 0
        for p, pe in target.peers.items():
            got = pe.drain()
            n += len(got)
            out.extend((p, f) for f in got)
        return n

    deadline = time.monotonic() + timeout_s
    for i, f in enumerate(frames, 1):
        while True:
            try:
                peer.send(f)
                break
            except BlockingIOError:
                drain()
                await asyncio.sleep(0.0005)
                if time.monotonic() > deadline:
                    raise TimeoutError("the switch stopped taking frames") from None
        if i % batch == 0:
            drain()
            await asyncio.sleep(0)
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        await asyncio.sleep(0.02)
        if drain():
            last = time.monotonic()
    return out


class ErrorLog(logging.Handler):
    """Collects log records at ERROR and above, and any record with a traceback, from every logger
    (the in-process fatflowd's 'no traceback in its log')."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def texts(self) -> list[str]:
        return [f"{r.name} {r.levelname}: {r.getMessage()}" for r in self.records]

    def __enter__(self) -> ErrorLog:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)


async def read_entries(target: SwitchProcess, *, credentials: grpc.ChannelCredentials | None = None,
                       options: Sequence[tuple[str, str]] = ()) -> list[p4r.TableEntry]:
    """Every table entry of the switch, read by a plain P4Runtime client (no arbitration needed)."""
    channel = (grpc.aio.secure_channel(target.address, credentials, options=list(options)) if credentials
               else grpc.aio.insecure_channel(target.address))
    async with channel:
        stub = p4r_grpc.P4RuntimeStub(channel)
        req = p4r.ReadRequest(device_id=target.device_id, entities=[p4r.Entity(table_entry=p4r.TableEntry())])
        out: list[p4r.TableEntry] = []
        async for reply in stub.Read(req, timeout=30):
            out.extend(e.table_entry for e in reply.entities)
        return out


def entry_set(entries: Iterable[p4r.TableEntry]) -> set[bytes]:
    """Entries as canonical bytes without counters/idle data: equal sets = the same tables."""
    keep = []
    for te in entries:
        c = p4r.TableEntry()
        c.CopyFrom(te)
        c.ClearField("counter_data")
        c.ClearField("time_since_last_hit")
        keep.append(c.SerializeToString(deterministic=True))
    return set(keep)


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: a client trusting it must fail


def make_certs(d: Path, *, host: str = "127.0.0.1") -> Certs:
    """A CA, a server certificate for ``host`` (IP and DNS SAN 'localhost') and a client certificate,
    made with the openssl command (EC P-256, 1 day)."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", f"/CN=fatflow-test-{ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.crt")
    for name, ext in (("server", f"subjectAltName=IP:{host},DNS:localhost\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        (d / f"{name}.ext").write_text(ext)
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt")
    return Certs(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key",
                 d / "other-ca.crt")


@dataclass
class StallProxy:
    """A TCP proxy on loopback between a client and ``upstream``; :meth:`stall` stops forwarding
    the switch-to-client direction (the connection stays open, nothing is closed), :meth:`resume`
    starts again."""

    upstream: str
    port: int = 0
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.base_events.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    bytes_held: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stall(self) -> None:
        self.stalled.set()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream.rsplit(":", 1)
        try:
            ur, uw = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        self._writers += [writer, uw]
        up = asyncio.create_task(self._copy(reader, uw, stallable=False))
        down = asyncio.create_task(self._copy(ur, writer, stallable=True))
        self._tasks |= {up, down}
        await asyncio.gather(up, down, return_exceptions=True)

    async def _copy(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, *, stallable: bool) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                data = await r.read(65536)
                if not data:
                    break
                if stallable and self.stalled.is_set():
                    self.bytes_held += len(data)
                    continue  # swallowed: the client never sees it, as on a dead link
                w.write(data)
                await w.drain()
        with contextlib.suppress(Exception):
            w.close()

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for w in self._writers:
            with contextlib.suppress(Exception):
                w.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


@contextlib.asynccontextmanager
async def stall_proxy(upstream: str) -> AsyncIterator[StallProxy]:
    proxy = StallProxy(upstream)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), KiB."""
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Burst:
    """Frames sent into a switch port from a thread at ``rate`` per second (paced in 1 ms slices; a
    blocking socket, so a switch that cannot keep up slows the sender: :attr:`achieved` is the rate
    actually offered)."""

    def __init__(self, target: SwitchProcess, port: int, frames: Sequence[bytes], rate: int) -> None:
        import threading

        assert target._sockdir is not None, "bursts use the Unix-socket ports"
        self.path = str(target._sockdir / f"p{port}")
        self.frames, self.rate = frames, rate
        self.sent = 0
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            t0 = time.perf_counter()
            for i, f in enumerate(self.frames):
                due = t0 + i / self.rate
                while (now := time.perf_counter()) < due:
                    time.sleep(min(0.001, due - now))
                sock.sendto(f, self.path)
                self.sent += 1
            self.seconds = time.perf_counter() - t0
        finally:
            sock.close()

    def start(self) -> Burst:
        self._thread.start()
        return self

    async def wait(self) -> None:
        while self._thread.is_alive():
            await asyncio.sleep(0.02)

    @property
    def achieved(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0
