"""Unit tests of the API layer without processes: request -> flow key (lookup.py) against the reference
key function, 5-tuple validation, the watcher queue bound, message -> plain data, fatflowctl's key
parser and tables, the generated code."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import grpc
import pytest
from p4fatflow.api.client import to_dict, update_request
from p4fatflow.api.errors import ApiError
from p4fatflow.api.hub import Watcher
from p4fatflow.api.lookup import SwitchView, fat, key_from_fields, packet_fields
from p4fatflow.api.pb import SERVICE_NAME, pb
from p4fatflow.ctl import Usage, build_parser, duration, parse_key, table
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key
from p4fatflow.settings import parse_config

CONFIG = """
version: 1
vns:
  - name: blue
    vrf: 10
    subnets: [10.0.0.0/8, 2001:db8::/32]
    rules:
      - {protocol: udp, port: 53, ignore_address: dst, src_prefix_aggr: {subnet: 10.0.0.0/8, plen: 28}}
  - name: red
    vrf: 20
switches:
  - name: sw1
    address: 127.0.0.1:9559
    device_id: 1
    p4info: p4info.txtpb
    device_config: dev.json
    router_mac: "02:00:00:00:00:aa"
    vmis:
      - {name: vm1, port: 1, vn: blue, mac: "02:00:00:00:01:01", addresses: [10.0.0.3, "2001:db8::3"],
         rules: [{protocol: tcp, port: 0, src_prefix_aggr: {subnet: 10.0.0.0/8, plen: 24},
                  dst_prefix_aggr: {subnet: 20.0.0.0/8, plen: 16}}]}
      - {name: vm2, port: 2, vn: blue, mac: "02:00:00:00:01:02", addresses: [10.0.0.4]}
      - {name: vm3, port: 4, vn: red, mac: "02:00:00:00:01:03"}
    fabric_ports: [{port: 3, vn: blue}]
"""


@pytest.fixture(scope="module")
def view() -> SwitchView:
    cfg = parse_config(CONFIG, "test.yaml", Path("/tmp"))
    return SwitchView(cfg.switch("sw1"), {"vm1": 1, "vm2": 2, "vm3": 3})


def reference(view: SwitchView, vmi: str, direction: Direction, *pkt: object) -> FlowKey:
    v = view.vmis[vmi]
    p = PacketFields(ip_address(pkt[0]), ip_address(pkt[1]), *pkt[2:])  # type: ignore[arg-type]
    return flow_key(p, direction, v.vmi.vrf, compile_rules(v.vmi.effective_rules()), ExcludeList(v.vmi.exclude_list()))


@pytest.mark.parametrize(("pkt", "vmi", "vrf", "expect_vmi", "direction"), [
    (("10.0.0.3", "8.8.8.8", 17, 1111, 53), "vm1", None, "vm1", Direction.FROM_VM),
    (("8.8.8.8", "10.0.0.3", 17, 53, 1111), "vm1", None, "vm1", Direction.TO_VM),
    (("10.0.0.3", "20.1.2.3", 6, 5000, 443), "", 10, "vm1", Direction.FROM_VM),
    (("20.1.2.3", "10.0.0.3", 6, 443, 5000), "", 10, "vm1", Direction.TO_VM),
    (("10.0.0.4", "8.8.8.8", 17, 1, 53), "", None, "vm2", Direction.FROM_VM),
    (("2001:db8::3", "2001:4860::1", 17, 1, 53), "vm1", None, "vm1", Direction.FROM_VM),
    (("1.2.3.4", "5.6.7.8", 17, 1, 53), "vm3", None, "vm3", Direction.FROM_VM),  # a VMI without addresses
])
def test_packet_to_key_is_the_reference_key(view: SwitchView, pkt: tuple[object, ...], vmi: str, vrf: int | None,
                                            expect_vmi: str, direction: Direction) -> None:
    p = packet_fields(*pkt)  # type: ignore[arg-type]
    got = view.resolve(p, vmi, vrf)
    assert got.vmi == expect_vmi and got.direction == direction.value
    assert got.key == reference(view, expect_vmi, direction, *pkt)


def test_fat_key_of_any_packet_of_the_fat_flow(view: SwitchView) -> None:
    a = view.resolve(packet_fields("10.0.0.3", "8.8.8.8", 17, 1111, 53), "vm1").key
    b = view.resolve(packet_fields("10.0.0.3", "1.1.1.1", 17, 2222, 53), "vm1").key
    assert a == b and str(a) == "vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53" and fat(a)


def test_transit_flow_with_only_a_vrf_is_the_normal_key(view: SwitchView) -> None:
    got = view.resolve(packet_fields("30.0.0.1", "40.0.0.1", 6, 1, 2), "", 10)
    assert got.vmi == "" and got.direction == "transit" and not fat(got.key)
    assert str(got.key) == "vrf 10 tcp 30.0.0.1/32:1 -> 40.0.0.1/32:2"


@pytest.mark.parametrize(("call", "code", "text"), [
    (lambda v: v.resolve(packet_fields("10.0.0.3", "8.8.8.8", 6, 1, 2), "vm"), grpc.StatusCode.NOT_FOUND,
     "vmi: no VMI 'vm' on switch sw1"),
    (lambda v: v.resolve(packet_fields("10.0.0.3", "8.8.8.8", 6, 1, 2), "", 99), grpc.StatusCode.NOT_FOUND,
     "vrf: switch sw1 has no vrf 99 (it has 10, 20)"),
    (lambda v: v.resolve(packet_fields("10.0.0.3", "8.8.8.8", 6, 1, 2), "vm1", 20), grpc.StatusCode.INVALID_ARGUMENT,
     "vrf: VMI vm1 is in vrf 10, not 20"),
    (lambda v: v.resolve(packet_fields("1.1.1.1", "8.8.8.8", 6, 1, 2), ""), grpc.StatusCode.INVALID_ARGUMENT,
     "vmi: give a VMI or a VRF"),
    (lambda v: packet_fields("", "8.8.8.8", 6, 1, 2), grpc.StatusCode.INVALID_ARGUMENT, "packet.src: an IP address"),
    (lambda v: packet_fields("10.0.0.3", "8.8.8.8", 1, 7, 3), grpc.StatusCode.INVALID_ARGUMENT,
     "packet.dport: must be 0 for ICMP"),
    (lambda v: packet_fields("10.0.0.3", "8.8.8.8", 6, 1, -1), grpc.StatusCode.INVALID_ARGUMENT,
     "packet.dport: -1 is out of range"),
    (lambda v: key_from_fields(10, "10.0.0.0", 33, "1.1.1.1", 32, 6, 0, 0), grpc.StatusCode.INVALID_ARGUMENT,
     "key.src_plen: 33 is out of range 0-32"),
])
def test_bad_requests_name_the_field(view: SwitchView, call: object, code: grpc.StatusCode, text: str) -> None:
    with pytest.raises(ApiError) as info:
        call(view)  # type: ignore[operator]
    assert info.value.code == code and text in info.value.message


def test_icmp_echo_identifier_is_the_source_port() -> None:
    p = packet_fields("10.0.0.3", "8.8.8.8", 1, 77, 0)
    assert (p.sport, p.dport) == (77, 0)


def test_watcher_queue_is_bounded_and_counts_what_it_loses() -> None:
    kinds = frozenset((pb.FlowEvent.CREATED,))
    w = Watcher("", None, 4, kinds, 3)
    for i in range(10):
        if w.wants(pb.FlowEvent.CREATED, "sw1", b"\x04" + bytes([i]), None):
            w.push((i,))
    assert [e[0] for e in w.queue] == [0, 1, 2] and w.skipped == 7 and w.wake.is_set()
    assert not w.wants(pb.FlowEvent.CREATED, "sw1", b"\x06x", None)  # family filter
    assert not w.wants(pb.FlowEvent.EXPIRED, "sw1", b"\x04x", None)  # kind filter
    assert not Watcher("sw2", None, 0, kinds, 3).wants(pb.FlowEvent.CREATED, "sw1", b"\x04x", None)


def test_update_request_presence_and_to_dict() -> None:
    req = update_request(packet=("10.0.0.3", "8.8.8.8", 17, 1, 53), vmi="vm1", offloaded=False, info=b"\x01\xff")
    assert req.HasField("offloaded") and not req.HasField("lifetime") and not req.HasField("verdict")
    d = to_dict(pb.Flow(packets=2**40, context=pb.FlowContext(info=b"\x01\xff", first_seen_ns=5)))
    assert d["packets"] == 2**40 and d["context"]["info"] == "01ff" and d["context"]["first_seen_ns"] == 5
    assert d["bytes"] == 0 and "idle_ms" not in d  # optional fields only when set
    assert SERVICE_NAME == "fatflow.v1.Fatflow"


def test_ctl_key_parser_and_table() -> None:
    assert parse_key("vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53") == {
        "vrf": 10, "src": "10.0.0.0", "src_plen": 28, "dst": "0.0.0.0", "dst_plen": 0, "protocol": 17, "sport": 0,
        "dport": 53}
    assert parse_key("vrf 1 6 [2001:db8::]/56:0 -> [::]/0:443")["src"] == "2001:db8::"
    with pytest.raises(Usage):
        parse_key("udp 10.0.0.0/28:0 -> 0.0.0.0/0:53")
    assert table(("A", "Num"), [["x", 5], ["long", 123]]).splitlines() == ["A     Num", "x       5", "long  123"]
    assert [duration(x) for x in (None, 5, 1500, 61_000, 7_200_000)] == ["-", "5ms", "1.5s", "1m01s", "2h00m"]
    a = build_parser().parse_args(["flows", "update", "--vmi", "vm1", "10.0.0.3", "8.8.8.8", "udp", "1", "53",
                                   "--no-offload"])
    assert a.offloaded is False and a.mirror is None and a.lifetime is None


def test_a_vmi_packet_from_any_source_is_from_vm_as_in_the_pipeline(view: SwitchView) -> None:
    # A subscriber pool behind vm1 sends from addresses that are not vm1's own: the pipeline keys
    # such packets (entering on vm1's port) as from-VM, and so does the API.
    got = view.resolve(packet_fields("10.0.0.77", "8.8.8.8", 17, 1111, 53), "vm1")
    assert got.key == view.resolve(packet_fields("10.0.0.78", "1.1.1.1", 17, 2222, 53), "vm1").key
    back = view.resolve(packet_fields("8.8.8.8", "10.0.0.3", 17, 53, 1111), "vm1")  # to vm1's own address
    assert str(back.key).startswith("vrf 10 udp") and back.key != got.key


def test_key_parts_are_those_of_the_key_and_the_cache_stays_bounded() -> None:
    from p4fatflow.api.messages import KeyParts, flow_pb, key_pb

    parts = KeyParts(limit=4)
    keys = [key_from_fields(10, "10.0.0.0", 28, "0.0.0.0", 0, 17, 0, 53),
            *(key_from_fields(10, "10.0.0.3", 32, f"20.0.0.{i}", 32, 6, 1000 + i, 443) for i in range(6))]
    for k in keys:
        kb, text, is_fat = parts.get(k)
        assert pb.FlowKey.FromString(kb) == key_pb(k) and text == str(k) and is_fat == fat(k)
        assert len(parts._parts) <= 4
    assert parts.get(keys[0])[2] and not parts.get(keys[1])[2]
    # a Flow built with the cache equals one built field by field, also when filled into a message
    f = flow_pb("sw1", keys[0], None, {}, packets=3, nbytes=99, now_ns=1)
    assert f.key == key_pb(keys[0]) and f.text == str(keys[0]) and f.fat and (f.packets, f.bytes) == (3, 99)
    ev = pb.FlowEvent()
    flow_pb("sw1", keys[0], None, {}, packets=3, nbytes=99, now_ns=1, into=ev.flow)
    assert ev.flow == f


def test_parsed_addresses_are_cached_but_bad_ones_are_always_refused() -> None:
    from p4fatflow.api import lookup

    a = lookup.parse_address("192.0.2.7", "packet.src")
    assert a == ip_address("192.0.2.7") and lookup.parse_address("192.0.2.7", "packet.src") is a
    for _ in range(2):
        with pytest.raises(ApiError, match=r"packet.dst: '192.0.2.300' is not an IPv4 or IPv6 address"):
            lookup.parse_address("192.0.2.300", "packet.dst")
        with pytest.raises(ApiError, match="an IP address is required"):
            lookup.parse_address("", "packet.dst")


def test_json_is_taken_before_or_after_the_command() -> None:
    p = build_parser()
    for argv, want in ((["flows", "list", "--json"], True), (["--json", "flows", "list"], True),
                       (["flows", "list"], False), (["stats", "--json"], True), (["config", "show"], False),
                       (["flows", "top", "--json", "--iterations", "1"], True)):
        assert p.parse_args(argv).json is want, argv


def test_info_tags_are_shown_as_text_when_printable() -> None:
    from p4fatflow.ctl import info_text

    assert info_text(b"dns") == "dns (646e73)"
    assert info_text(b"") == "-"
    assert info_text(b"\x00\xff\x10") == "00ff10"
    assert info_text(b"tls\x00\x00") == "tls (746c730000)"  # zero padding is not text
