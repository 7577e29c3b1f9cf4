"""Port specs and the Unix datagram port end to end (rootless); AF_PACKET on veth
when root."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
import uuid
from collections import Counter
from typing import Any

import pytest

from softswitch.ports import (
    AfPacketPort,
    PcapWriter,
    PortSpec,
    PortSpecError,
    UnixPortPeer,
    attach_ports,
    parse_port_spec,
    restore_vlan,
)


def test_parse_port_specs() -> None:
    assert parse_port_spec("1@veth0") == PortSpec(1, "afpacket", "veth0")
    assert parse_port_spec("7@unix:/tmp/x.sock") == PortSpec(7, "unix", "/tmp/x.sock")


@pytest.mark.parametrize(("spec", "needle"), [
    ("veth0", "expected N@IFNAME"),
    ("x@veth0", "not an integer"),
    ("511@veth0", "drop port"),
    ("-1@veth0", "0..510"),
    ("1@", "empty interface"),
    ("1@unix:", "empty socket path"),
    ("1@averyveryverylongname", "not a valid Linux interface"),
    ("1@unix:/" + "a" * 120, "too long"),
])
def test_bad_port_specs(spec: str, needle: str) -> None:
    with pytest.raises(PortSpecError, match=needle):
        parse_port_spec(spec)


class FakeDevice:
    """Sends every received frame back out, reversed, on port ``in + shift``."""

    def __init__(self, shift: int = 1) -> None:
        self.shift = shift
        self.on_transmit: Any = None
        self.counters: Counter[str] = Counter()
        self.received: list[tuple[int, bytes]] = []

    def receive(self, port: int, frame: bytes) -> None:
        self.received.append((port, frame))
        assert self.on_transmit is not None
        self.on_transmit(port + self.shift, frame[::-1])


@pytest.fixture
def sockdir(tmp_path: Any) -> Any:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can be longer
    d = f"/tmp/ssw-{uuid.uuid4().hex[:8]}"
    os.mkdir(d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


async def test_unix_port_end_to_end(sockdir: str, tmp_path: Any) -> None:
    dev = FakeDevice()
    a, b = f"{sockdir}/p1", f"{sockdir}/p2"
    closables = attach_ports(dev, [f"1@unix:{a}", f"2@unix:{b}"], pcap_dir=str(tmp_path / "pcap"))
    try:
        with UnixPortPeer(a) as pa, UnixPortPeer(b) as pb:
            pa.send(b"\x01\x02\x03")
            got = await pb.recv(timeout=5)
            assert got == b"\x03\x02\x01"
            assert dev.received == [(1, b"\x01\x02\x03")]
            # port 2 -> transmits on port 3, which has no backend: dropped and counted
            pb.send(b"zz")
            for _ in range(100):
                if dev.counters["tx_no_backend"]:
                    break
                await asyncio.sleep(0.01)
            assert dev.counters["tx_no_backend"] == 1
            assert await pa.recv(timeout=0.05) is None
        # the peer of port 2 is gone: transmissions are dropped, not errors
        with UnixPortPeer(a) as pa:
            pa.send(b"\x00")
            for _ in range(100):
                if dev.counters["tx_failed"]:
                    break
                await asyncio.sleep(0.01)
            assert dev.counters["tx_failed"] == 1
    finally:
        for c in closables:
            c.close()
    assert not os.path.exists(a)
    pcap = (tmp_path / "pcap" / "port2_out.pcap").read_bytes()
    assert struct.unpack("<I", pcap[:4])[0] == 0xA1B2C3D4
    # only frames actually sent are captured (the last one had no peer)
    assert pcap.endswith(b"\x03\x02\x01")
    port1_in = (tmp_path / "pcap" / "port1_in.pcap").read_bytes()
    assert port1_in[24 + 16:24 + 16 + 3] == b"\x01\x02\x03"  # first record
    assert port1_in.endswith(b"\x00")  # second record


async def test_unix_peer_recv_sync_times_out(sockdir: str) -> None:
    with UnixPortPeer(f"{sockdir}/nobody") as p:
        assert p.recv_sync(timeout=0.05) is None
        with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
            p.send(b"x")


async def test_duplicate_port_rejected(sockdir: str) -> None:
    dev = FakeDevice()
    with pytest.raises(PortSpecError, match="twice"):
        attach_ports(dev, [f"1@unix:{sockdir}/a", f"1@unix:{sockdir}/b"])
    assert not os.path.exists(f"{sockdir}/a")


def test_pcap_writer_format(tmp_path: Any) -> None:
    w = PcapWriter(str(tmp_path))
    w.write(3, "in", b"abc")
    w.close()
    data = (tmp_path / "port3_in.pcap").read_bytes()
    assert len(data) == 24 + 16 + 3
    assert struct.unpack("<IHHiIII", data[:24])[6] == 1  # LINKTYPE_ETHERNET
    assert struct.unpack("<IIII", data[24:40])[2:] == (3, 3)


def test_restore_vlan_from_auxdata() -> None:
    frame = bytes(range(12)) + b"\x08\x00payload"
    assert restore_vlan(frame, 0, 0, 0, 0, 0, 0, 0) == frame  # no tag stripped
    tagged = restore_vlan(frame, 0x10, 0, 0, 0, 0, 0x2005, 0)
    assert tagged == bytes(range(12)) + b"\x81\x00\x20\x05\x08\x00payload"
    qinq = restore_vlan(frame, 0x10 | 0x40, 0, 0, 0, 0, 7, 0x88A8)
    assert qinq[12:16] == b"\x88\xa8\x00\x07"


def _can_make_veth() -> str | None:
    if os.geteuid() != 0:
        return "AF_PACKET test needs root (creates a veth pair); not root"
    if shutil.which("ip") is None:
        return "AF_PACKET test needs the 'ip' command (iproute2)"
    r = subprocess.run(["ip", "link", "add", "sswtest0", "type", "veth", "peer", "name", "sswtest1"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a veth pair: {r.stderr.strip()}"
    return None


async def test_afpacket_port_on_veth() -> None:
    why = _can_make_veth()
    if why:
        pytest.skip(f"SKIPPED LOUDLY: {why}")
    try:
        for ifn in ("sswtest0", "sswtest1"):
            subprocess.run(["ip", "link", "set", ifn, "up"], check=True)
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{ifn}.disable_ipv6=1"], check=False)
        dev = FakeDevice(shift=0)
        closables = attach_ports(dev, ["1@sswtest0"])
        far = AfPacketPort(9, "sswtest1")
        got: asyncio.Queue[bytes] = asyncio.Queue()
        far.start(asyncio.get_running_loop(), lambda p, f: got.put_nowait(f))
        try:
            frame = bytes.fromhex("ffffffffffff0200000000018999") + b"x" * 1486  # 1500-byte frame
            far.send(frame)
            out = await asyncio.wait_for(got.get(), 5)
            while out != frame[::-1]:
                out = await asyncio.wait_for(got.get(), 5)
            assert any(f == frame for _, f in dev.received)
            # an 802.1Q-tagged frame arrives with its tag (veth offloads it)
            tagged = frame[:12] + b"\x81\x00\x00\x2a" + frame[12:]
            far.send(tagged)
            out = await asyncio.wait_for(got.get(), 5)
            while out != tagged[::-1]:
                out = await asyncio.wait_for(got.get(), 5)
            assert any(f == tagged for _, f in dev.received)
        finally:
            far.close()
            for c in closables:
                c.close()
    finally:
        subprocess.run(["ip", "link", "del", "sswtest0"], check=False)


async def test_real_device_over_unix_ports(sockdir: str) -> None:
    """A compiled program forwarding between two Unix ports (no fakes)."""
    from pathlib import Path

    from softswitch.device import Device
    from softswitch.interp.tables import Exact, TableEntry

    src_path = Path(__file__).parent / "programs" / "tunnel.p4"
    dev = Device()
    dev.commit(Device.compile(src_path.read_text(), str(src_path)))
    assert dev.program is not None
    dev.program.compiled.tables["MyIngress.tunnel_exact"].insert(
        TableEntry(matches=(Exact(9),), action="MyIngress.tunnel_forward", args=(2,)))
    closables = attach_ports(dev, [f"1@unix:{sockdir}/a", f"2@unix:{sockdir}/b"])
    try:
        with UnixPortPeer(f"{sockdir}/a") as pa, UnixPortPeer(f"{sockdir}/b") as pb:
            frame = bytes(12) + b"\x12\x12" + b"\x08\x00\x00\x09" + b"inner"
            pa.send(frame)
            assert await pb.recv(timeout=5) == frame
            pa.send(bytes(12) + b"\x12\x12" + b"\x08\x00\x00\x08")  # unknown id: dropped
            pa.send(frame)
            assert await pb.recv(timeout=5) == frame
            assert dev.stats()["drop"] == 1
    finally:
        for c in closables:
            c.close()
