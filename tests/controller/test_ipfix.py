"""The IPFIX encoder against a message decoded by hand (RFC 7011 sections 3.1, 3.3, 3.4), its
sequence numbers and size limit, the exporter over a real UDP socket, and the configuration's
``export:`` section."""

from __future__ import annotations

import asyncio
import socket
import struct
from ipaddress import ip_address
from pathlib import Path

import pytest
import yaml
from p4fatflow.export.ipfix import (
    END_REASONS,
    TEMPLATE_V4,
    TEMPLATE_V6,
    IpfixEncoder,
    IpfixExporter,
    IpfixFlow,
)
from p4fatflow.records import Reason, RecordBus
from p4fatflow.settings import ConfigFileError, ExportSettings, IpfixSettings, config_to_yaml, parse_config

V4 = IpfixFlow(ip_address("10.0.0.0").packed, ip_address("20.0.0.16").packed, 6, 0, 443, 28, 28, 3, 180,
               1_700_000_000_000, 1_700_000_004_000, 1, 10, 1)
V6 = IpfixFlow(ip_address("2001:db8::").packed, ip_address("2001:db8:1::").packed, 17, 1234, 53, 64, 48, 5, 500,
               1_700_000_000_500, 1_700_000_001_500, 5, 11, 2)


def test_message_with_templates_and_one_ipv4_record_decoded_by_hand() -> None:
    msg = IpfixEncoder(observation_domain=7).messages([V4], export_time=0x65000000, templates=True)
    assert len(msg) == 1
    m = msg[0]
    # Message header: version 10, length, export time, sequence number 0, observation domain 7.
    assert m[:16] == bytes.fromhex("000a") + struct.pack("!H", len(m)) + bytes.fromhex("65000000 00000000 00000007")
    # Template set (id 2): two template records of 14 fields each: 4 + 2 * (4 + 14 * 4) = 124 bytes.
    assert m[16:20] == bytes.fromhex("0002 007c")
    v4_template = bytes.fromhex(
        "0100 000e"  # template 256, 14 fields
        "0098 0008" "0099 0008"  # flowStartMilliseconds(152), flowEndMilliseconds(153)
        "0001 0008" "0002 0008"  # octetDeltaCount(1), packetDeltaCount(2)
        "0008 0004" "000c 0004"  # sourceIPv4Address(8), destinationIPv4Address(12)
        "0007 0002" "000b 0002"  # sourceTransportPort(7), destinationTransportPort(11)
        "0004 0001"  # protocolIdentifier(4)
        "0009 0001" "000d 0001"  # sourceIPv4PrefixLength(9), destinationIPv4PrefixLength(13)
        "0088 0001"  # flowEndReason(136)
        "00ea 0004" "000a 0004")  # ingressVRFID(234), ingressInterface(10)
    assert m[20:80] == v4_template
    v6_template = bytes.fromhex(
        "0101 000e" "0098 0008" "0099 0008" "0001 0008" "0002 0008"
        "001b 0010" "001c 0010"  # sourceIPv6Address(27), destinationIPv6Address(28)
        "0007 0002" "000b 0002" "0004 0001"
        "001d 0001" "001e 0001"  # sourceIPv6PrefixLength(29), destinationIPv6PrefixLength(30)
        "0088 0001" "00ea 0004" "000a 0004")
    assert m[80:140] == v6_template
    # Data set 256: one 56-byte record.
    assert m[140:144] == bytes.fromhex("0100 003c")
    assert m[144:] == bytes.fromhex(
        "0000018bcfe56800"  # start 1700000000000 ms
        "0000018bcfe577a0"  # end 1700000004000 ms
        "00000000000000b4"  # 180 octets
        "0000000000000003"  # 3 packets
        "0a000000" "14000010"  # 10.0.0.0, 20.0.0.16
        "0000" "01bb"  # ports 0, 443
        "06" "1c" "1c" "01"  # tcp, /28, /28, idle timeout
        "0000000a" "00000001")  # vrf 10, port 1
    assert len(m) == 200


def test_ipv6_record_and_sequence_numbers_count_data_records_only() -> None:
    enc = IpfixEncoder()
    first = enc.messages([V4, V6, V6], export_time=1, templates=True)
    assert len(first) == 1 and enc.sequence == 3
    m = first[0]
    assert struct.unpack("!I", m[8:12]) == (0,)
    # after the template set: a v4 data set (1 record) then a v6 data set (2 records of 80 bytes)
    off = 16 + 124
    assert struct.unpack("!HH", m[off:off + 4]) == (TEMPLATE_V4, 4 + 56)
    off += 60
    assert struct.unpack("!HH", m[off:off + 4]) == (TEMPLATE_V6, 4 + 160)
    rec = m[off + 4:off + 84]
    assert rec[32:48] == ip_address("2001:db8::").packed and rec[48:64] == ip_address("2001:db8:1::").packed
    assert struct.unpack("!HHBBBBII", rec[64:]) == (1234, 53, 17, 64, 48, 5, 11, 2)
    second = enc.messages([V4], export_time=2)
    assert struct.unpack("!I", second[0][8:12]) == (3,)  # records sent before this message
    assert second[0][16:18] == struct.pack("!H", TEMPLATE_V4)  # no template set this time
    assert enc.sequence == 4


def test_messages_stay_within_max_message_and_keep_every_record() -> None:
    enc = IpfixEncoder(max_message=600)
    flows = [V4._replace(sport=i) for i in range(50)] + [V6._replace(sport=i) for i in range(20)]
    msgs = enc.messages(flows, export_time=1, templates=True)
    assert all(len(m) <= 600 for m in msgs) and all(struct.unpack("!H", m[2:4])[0] == len(m) for m in msgs)
    seqs = [struct.unpack("!I", m[8:12])[0] for m in msgs]
    counts = []
    for m in msgs:  # walk the sets: every record is there once
        off, n = 16, 0
        while off < len(m):
            sid, length = struct.unpack("!HH", m[off:off + 4])
            if sid in (TEMPLATE_V4, TEMPLATE_V6):
                n += (length - 4) // (56 if sid == TEMPLATE_V4 else 80)
            off += length
        counts.append(n)
    assert sum(counts) == 70 and enc.sequence == 70
    assert seqs == [sum(counts[:i]) for i in range(len(msgs))]
    assert enc.messages([], export_time=1) == []
    assert len(enc.messages([], export_time=1, templates=True)) == 1  # templates alone


def test_sequence_number_wraps_modulo_2_32() -> None:
    enc = IpfixEncoder()
    enc.sequence = 0xFFFFFFFF
    enc.messages([V4, V4], export_time=1)
    assert enc.sequence == 1


def test_end_reasons_follow_iana_flow_end_reason() -> None:
    assert {r: END_REASONS[r] for r in Reason} == {Reason.IDLE: 1, Reason.RECYCLED: 5, Reason.FLUSHED: 4,
                                                   Reason.DELETED: 4, Reason.LIFETIME0: 1}


async def test_exporter_sends_templates_then_records_over_udp_and_refreshes_templates() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    bus = RecordBus()
    exp = IpfixExporter(f"127.0.0.1:{sock.getsockname()[1]}", bus, template_refresh_s=1)
    exp.start()
    try:
        first = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)  # templates at start, alone
        assert struct.unpack("!HH", first[16:20]) == (2, 124) and len(first) == 16 + 124
        again = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)  # refreshed after 1 s
        assert again[16:18] == b"\x00\x02"
        assert exp.stats.templates >= 2 and exp.stats.records == 0
    finally:
        await exp.stop()
        sock.close()


# ---- the configuration's export section ------------------------------------------------------------

def _example() -> dict[str, object]:
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "fatflowd.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _parse(data: dict[str, object]) -> object:
    examples = Path(__file__).resolve().parents[2] / "examples"
    return parse_config(yaml.safe_dump(data, sort_keys=False), "ff.yaml", examples)


def test_export_section_is_optional_and_parsed_with_defaults() -> None:
    cfg = _parse(_example())
    assert cfg.export == ExportSettings()  # type: ignore[attr-defined]
    data = _example() | {"export": {"ipfix": {"collector": "[::1]:4739"}}}
    cfg = _parse(data)
    assert cfg.export.ipfix == IpfixSettings("[::1]:4739", 1, 60, None)  # type: ignore[attr-defined]
    data = _example() | {"export": {"ipfix": {"collector": "127.0.0.1:4739", "periodic_s": 30,
                                              "observation_domain": 9, "template_refresh_s": 5}}}
    cfg = _parse(data)
    assert cfg.export.ipfix == IpfixSettings("127.0.0.1:4739", 9, 5, 30)  # type: ignore[attr-defined]
    # config_to_yaml keeps it, and what it prints reads back the same
    again = _parse(yaml.safe_load(config_to_yaml(cfg)))  # type: ignore[arg-type]
    assert again.export == cfg.export  # type: ignore[attr-defined]
    assert _parse(_example() | {"export": None}).export.ipfix is None  # type: ignore[attr-defined]
    assert _parse(_example() | {"export": {"ipfix": None}}).export.ipfix is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("export", "problem"), [
    ({"ipfix": {}}, "export.ipfix: missing required key 'collector'"),
    ({"ipfix": {"collector": "nowhere"}}, "export.ipfix.collector: 'nowhere' is not host:port"),
    ({"ipfix": {"collector": "127.0.0.1:0"}}, "export.ipfix.collector: port 0 is out of range 1-65535"),
    ({"ipfix": {"collector": "127.0.0.1:4739", "periodic_s": 0}}, "export.ipfix.periodic_s: 0 is out of range 1-86400"),
    ({"ipfix": {"collector": "127.0.0.1:4739", "observation_domain": -1}},
     "export.ipfix.observation_domain: -1 is out of range 0-4294967295"),
    ({"ipfix": {"collector": "127.0.0.1:4739", "colector": 1}}, "export.ipfix.colector: unknown key 'colector'"),
    ({"netflow": {}}, "export.netflow: unknown key 'netflow'"),
])
def test_export_section_problems_are_reported(export: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        _parse(_example() | {"export": export})
    assert any(problem in str(p) for p in err.value.problems), err.value
