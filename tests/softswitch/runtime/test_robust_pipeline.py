"""Bad SetForwardingPipelineConfig requests against a running fatflow pipeline: each is
refused with INVALID_ARGUMENT naming the problem, and nothing already running is lost
(entries, cookie, forwarding)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from finsy.proto import p4i, p4r
from scapy.layers.inet import IP, UDP  # type: ignore[import-untyped]
from scapy.layers.l2 import Ether  # type: ignore[import-untyped]
from test_robust_harness import ServerThread, fatflow_build, ids

COOKIE = 0xC0FFEE


@pytest.fixture(scope="module")
def switch() -> Iterator[ServerThread]:
    config, info = fatflow_build()
    s = ServerThread()
    s.set_pipeline(config, info, cookie=COOKIE)
    yield s
    s.close()


def _entry(table_id: int, matches: list[tuple[int, str, bytes, int]], action_id: int,
           params: list[bytes], priority: int = 0) -> p4r.Entity:
    e = p4r.Entity()
    te = e.table_entry
    te.table_id = table_id
    for fid, kind, value, plen in matches:
        fm = te.match.add(field_id=fid)
        if kind == "exact":
            fm.exact.value = value
        else:
            fm.lpm.value = value
            fm.lpm.prefix_len = plen
    te.action.action.action_id = action_id
    for i, v in enumerate(params, 1):
        te.action.action.params.add(param_id=i, value=v)
    te.priority = priority
    return e


def _install_state(s: ServerThread, info: p4i.P4Info) -> None:
    n = ids(info)
    ins = p4r.Update.INSERT
    port = _entry(n["port_table"], [(1, "exact", b"\x01", 0)], n["set_fabric_port"],
                  [b"\x00\x01", b"\x00", b"\x00", b"\x00"])
    route = _entry(n["route_v4"], [(1, "exact", b"\x00\x01", 0), (2, "lpm", bytes([10, 0, 0, 0]), 8)],
                   n["set_next_hop"], [b"\x02", bytes.fromhex("020000000001"), bytes.fromhex("020000000002"), b"\x00"])
    flow = _entry(n["flow_v4"], [(1, "exact", b"\x01", 0), (2, "exact", bytes([10, 0, 0, 1]), 0),
                                 (3, "exact", bytes([10, 0, 0, 2]), 0), (4, "exact", b"\x11", 0),
                                 (5, "exact", b"\x04\xd2", 0), (6, "exact", b"\x00\x35", 0),
                                 (7, "exact", b"\x20", 0), (8, "exact", b"\x20", 0)],
                  n["flow_forward"], [b"\x00", b"\x00", b"\x03"])
    assert s.write([p4r.Update(type=ins, entity=x) for x in (port, route, flow)]) == [0, 0, 0]


def _frame() -> bytes:
    pkt = (Ether(dst="02:00:00:00:00:aa", src="02:00:00:00:00:bb") / IP(src="192.168.0.1", dst="10.1.2.3")
           / UDP(sport=1234, dport=53) / b"hello")
    return bytes(pkt)


def _snapshot(s: ServerThread) -> list[bytes]:
    return sorted(te.SerializeToString(deterministic=True) for te in s.read_all_tables())


def _expect_invalid(s: ServerThread, config: bytes, info: p4i.P4Info | None, *words: str) -> str:
    with pytest.raises(grpc.RpcError) as exc:
        s.set_pipeline(config, info, cookie=COOKIE + 1)
    err = exc.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    details = err.details() or ""
    for w in words:
        assert w in details, (w, details)
    return details


def test_bad_configs_keep_the_running_pipeline(switch: ServerThread) -> None:
    config, info = fatflow_build()
    _install_state(switch, info)
    before = _snapshot(switch)
    assert len(before) == 3
    out = switch.receive(1, _frame())
    assert [p for p, _ in out] == [2], out

    text = config.decode()
    broken = text.replace("apply {", "apply { this is not P4 ", 1)
    _expect_invalid(switch, broken.encode(), info, "does not compile", "syntax error")
    other = p4i.P4Info()
    other.CopyFrom(info)
    other.tables[0].preamble.name = "ingress.nope"
    other.actions[0].params.add(id=99, name="extra", bitwidth=3)
    _expect_invalid(switch, config, other, "does not match", "ingress.nope", "params")
    _expect_invalid(switch, b"", info, "empty")
    _expect_invalid(switch, b"   \n\t ", None, "empty")
    _expect_invalid(switch, bytes(range(1, 256)) * 4, None, "UTF-8")
    _expect_invalid(switch, b"\xff\xfe\x00garbage", info, "UTF-8")
    _expect_invalid(switch, b"control C() { apply {} }\n", None, "V1Switch")
    _expect_invalid(switch, b"@@@@ )))) {{{{", None, "does not compile")

    assert _snapshot(switch) == before
    assert switch.cookie() == COOKIE
    out = switch.receive(1, _frame())
    assert [p for p, _ in out] == [2], out
    # the same pipeline still accepts writes
    n = ids(info)
    port2 = _entry(n["port_table"], [(1, "exact", b"\x05", 0)], n["set_fabric_port"],
                   [b"\x00\x01", b"\x00", b"\x00", b"\x00"])
    assert switch.write([p4r.Update(type=p4r.Update.INSERT, entity=port2)]) == [0]
    assert switch.write([p4r.Update(type=p4r.Update.DELETE, entity=port2)]) == [0]
    assert _snapshot(switch) == before


@pytest.mark.parametrize("change", ["scope", "idle_timeout", "const_table", "direct_counter", "digest_type"])
def test_p4info_that_disagrees_on_behaviour_is_refused(switch: ServerThread, change: str) -> None:
    # regression: only ids, names, match fields, params and the set of action ids were
    # compared, so a P4Info with other scopes / flags was accepted and then governed
    # the server's checks
    config, info = fatflow_build()
    bad = p4i.P4Info()
    bad.CopyFrom(info)
    tables = {t.preamble.alias: t for t in bad.tables}
    if change == "scope":
        for r in tables["port_table"].action_refs:
            r.scope = p4i.ActionRef.TABLE_AND_DEFAULT
        words = ["port_table", "DEFAULT_ONLY"]
    elif change == "idle_timeout":
        tables["flow_v4"].idle_timeout_behavior = p4i.Table.NO_TIMEOUT
        words = ["flow_v4", "idle_timeout_behavior"]
    elif change == "const_table":
        tables["route_v4"].is_const_table = True
        words = ["route_v4", "is_const_table"]
    elif change == "direct_counter":
        bad.direct_counters[0].direct_table_id = tables["route_v4"].preamble.id
        words = ["direct_table_id"]
    else:
        bad.digests[0].type_spec.struct.name = "other_t"
        words = ["digest", "type_spec"]
    before = _snapshot(switch)
    _expect_invalid(switch, config, bad, "does not match", *words)
    assert _snapshot(switch) == before and switch.cookie() == COOKIE


def test_get_answers_the_p4info_sent(switch: ServerThread) -> None:
    config, info = fatflow_build()
    sent = p4i.P4Info()
    sent.CopyFrom(info)
    sent.pkg_info.doc.brief = "sent by the controller"
    switch.set_pipeline(config, sent, cookie=COOKIE, action=p4r.SetForwardingPipelineConfigRequest.VERIFY)
    req = p4r.GetForwardingPipelineConfigRequest(
        device_id=0, response_type=p4r.GetForwardingPipelineConfigRequest.P4INFO_AND_COOKIE)
    got = switch.stub.GetForwardingPipelineConfig(req, timeout=10).config.p4info
    assert got == info


@pytest.mark.parametrize(("size", "what"), [("99999999999999999999999", "table ingress.port_map.port_table"),
                                            ("-5", "table ingress.port_map.port_table")])
def test_table_size_the_p4info_cannot_hold_is_invalid_argument(switch: ServerThread, size: str, what: str) -> None:
    # regression: build_p4info assigned it to the int64 field: ValueError -> INTERNAL
    config, _info = fatflow_build()
    text = config.decode()
    assert "size = 512;" in text  # port_table's, the first
    bad = text.replace("size = 512;", f"size = {size};", 1)
    before = _snapshot(switch)
    _expect_invalid(switch, bad.encode(), None, what, "size")
    assert _snapshot(switch) == before and switch.cookie() == COOKIE



def test_register_size_beyond_int32_is_a_p4info_error() -> None:
    # regression: RegisterInfo.size is int32 in the P4Info; 2^31 and more raised
    # protobuf's ValueError (INTERNAL) instead of an error naming the register
    from softswitch import frontend
    from softswitch.p4info import P4InfoError, build_p4info

    config, _info = fatflow_build()
    text = config.decode()
    i = text.index("{", text.index("control ingress(")) + 1
    j = text.index("apply {", i) + len("apply {")
    bad = text[:i] + "\nregister<bit<8>>(32w0x80000000) big_r;\n" + text[i:j] + "big_r.write(0, 1);" + text[j:]
    with pytest.raises(P4InfoError, match=r"register ingress\.big_r: size 2147483648"):
        build_p4info(frontend.load_program(bad))


@pytest.mark.parametrize(("decl", "words"), [
    ("counter(32w0xffffffff, CounterType.packets) big_c;", ["counter", "big_c", "4294967295"]),
    ("register<bit<32>>(32w0x7ffffff0) big_r;", ["register", "big_r", "too large"]),
    ("counter(-5, CounterType.packets) neg_c;", ["neg_c", "size"]),
])
def test_extern_sizes_that_would_exhaust_memory_are_refused(switch: ServerThread, decl: str,
                                                            words: list[str]) -> None:
    # regression: extern arrays are allocated at compile time; a 2^32-cell counter ran
    # the switch out of memory (a negative size: MemoryError -> INTERNAL); v1model now
    # refuses them at bind time (b3b2a03), which this checks end to end
    config, _info = fatflow_build()
    text = config.decode()
    anchor = "control ingress("
    assert anchor in text
    name = decl.split()[-1].rstrip(";")
    i = text.index("{", text.index(anchor)) + 1
    use = f"{name}.count(0);" if "counter" in decl else f"{name}.write(0, 1);"
    j = text.index("apply {", i) + len("apply {")
    bad = text[:i] + "\n" + decl + "\n" + text[i:j] + use + text[j:]
    before = _snapshot(switch)
    _expect_invalid(switch, bad.encode(), None, *words)
    assert _snapshot(switch) == before and switch.cookie() == COOKIE


def test_reconcile_keeps_entries_and_reports_the_new_p4info(switch: ServerThread) -> None:
    config, info = fatflow_build()
    before = _snapshot(switch)
    sent = p4i.P4Info()
    sent.CopyFrom(info)
    sent.pkg_info.doc.brief = "reconciled"
    switch.set_pipeline(config, sent, cookie=COOKIE + 7,
                        action=p4r.SetForwardingPipelineConfigRequest.RECONCILE_AND_COMMIT)
    try:
        req = p4r.GetForwardingPipelineConfigRequest(device_id=0)
        got = switch.stub.GetForwardingPipelineConfig(req, timeout=10).config
        assert got.cookie.cookie == COOKIE + 7
        assert got.p4info.pkg_info.doc.brief == "reconciled"
        assert _snapshot(switch) == before
    finally:
        switch.set_pipeline(config, info, cookie=COOKIE,
                            action=p4r.SetForwardingPipelineConfigRequest.RECONCILE_AND_COMMIT)
    assert switch.cookie() == COOKIE and _snapshot(switch) == before


def test_the_switch_keeps_serving_while_a_program_compiles(switch: ServerThread) -> None:
    # regression: the compile ran on the event loop, so a slow program (here: two
    # 2^24-cell externs, allocated at compile time) stalled every RPC, stream and packet
    import threading
    import time

    config, _info = fatflow_build()
    text = config.decode()
    i = text.index("{", text.index("control ingress(")) + 1
    j = text.index("apply {", i) + len("apply {")
    decls = "\ncounter(32w0x1000000, CounterType.packets) slow_c;\nregister<bit<8>>(32w0x1000000) slow_r;\n"
    slow = text[:i] + decls + text[i:j] + "slow_c.count(0); slow_r.write(0, 1);" + text[j:]
    done = threading.Event()
    errors: list[BaseException] = []

    def push() -> None:
        try:
            switch.set_pipeline(slow.encode(), None, cookie=COOKIE,
                                action=p4r.SetForwardingPipelineConfigRequest.VERIFY)
        except BaseException as e:
            errors.append(e)
        done.set()

    t0 = time.monotonic()
    threading.Thread(target=push, daemon=True).start()
    served = 0
    while not done.is_set():
        switch.stub.Capabilities(p4r.CapabilitiesRequest(), timeout=10)
        served += 1
    took = time.monotonic() - t0
    assert not errors, errors
    assert switch.cookie() == COOKIE
    if took > 0.3:  # a compile that fast proves nothing either way
        assert served >= 3, (served, took)
