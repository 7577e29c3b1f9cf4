"""topo.plan (pure): the lab of examples/lab.yaml and the rules that derive hosts from a
configuration; the DNS responder; the usage text. No root, no processes."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest
from conftest import LAB_YAML
from p4fatflow.settings import FatflowConfig, format_mac, load_config, parse_config

from topo import lab
from topo.dnsd import answer
from topo.plan import FALLBACK_V4, LabPlanError, build_plan, fabric_addresses


def test_lab_yaml_hosts_follow_the_configuration() -> None:
    cfg = load_config(LAB_YAML)
    plan = build_plan(cfg)
    sw = cfg.switches[0]
    assert [(h.name, h.role, h.port) for h in plan.hosts] == [
        ("vm1", "vm", 1), ("vm2", "vm", 2), ("fab3", "fabric", 3), ("analyzer", "analyzer", 4)]
    router = format_mac(sw.router_mac)
    for v in sw.vmis:  # a VM is its VMI: MAC, addresses, gateway -> router MAC
        h = plan.host(v.name)
        assert h.mac == format_mac(v.mac)
        assert h.addresses == v.addresses
        assert all(mac == router for _, mac in h.neighbours)
        assert {str(gw) for _, gw in h.routes} <= {"10.0.0.1", "2001:db8:10::1"}
        assert all(dest.prefixlen == 0 for dest, _ in h.routes)
    fab = plan.host("fab3")
    assert fab.mac == format_mac(sw.routes[0].mac)  # the switch rewrites dst MAC to the route's mac
    assert fab.addresses == (ip_address("203.0.113.1"), ip_address("2001:db8:ffff::1"))
    assert [(str(d), str(g)) for d, g in fab.routes] == [("10.0.0.0/24", "10.0.0.1"),
                                                         ("2001:db8:10::/64", "2001:db8:10::1")]
    assert {mac for _, mac in fab.neighbours} == {router}
    assert plan.namespace(fab) == "ffl-fab3" and plan.switch_ifname(3) == "ffl-p3"


def test_setup_commands_keep_hosts_quiet() -> None:
    plan = build_plan(load_config(LAB_YAML))
    v6 = [" ".join(c) for c in plan.host("vm1").setup_commands("eth0")]
    assert "sysctl -q -w net.ipv6.conf.eth0.addr_gen_mode=1" in v6  # no link-local address
    assert "sysctl -q -w net.ipv6.conf.eth0.accept_dad=0" in v6
    assert "ip -6 addr add 2001:db8:10::3/128 dev eth0 nodad" in v6
    assert "ip neigh replace 10.0.0.1 lladdr 02:00:00:00:00:aa dev eth0 nud permanent" in v6
    assert "ip -4 route replace default via 10.0.0.1 dev eth0 onlink" in v6
    assert "ethtool -K eth0 rx off tx off sg off" in v6
    v4 = [" ".join(c) for c in plan.host("vm2").setup_commands("vm2-eth0", offload=False)]
    assert v4[-1].endswith("dev vm2-eth0 onlink") and not any("ethtool" in c for c in v4)
    assert not any("disable_ipv6=0" in c for c in v4)  # IPv4-only hosts keep IPv6 off


BASE = """
version: 1
vns: [{name: blue, vrf: 10, subnets: [10.0.0.0/24]}]
switches:
  - name: s
    address: 127.0.0.1:9559
    device_id: 1
    p4info: x
    device_config: y
    router_mac: "02:00:00:00:00:aa"
    vmis: [{name: A-Long-VMI-name, port: 1, vn: blue, mac: "02:00:00:00:01:01", addresses: [10.0.0.3]}]
    fabric_ports: [{port: 7, vn: blue}]
    routes: ROUTES
"""


def _cfg(routes: str) -> FatflowConfig:
    return parse_config(BASE.replace("ROUTES", routes), base_dir=Path("/nonexistent"))


def test_fabric_address_fallback_and_host_names() -> None:
    cfg = _cfg('[{vn: blue, prefix: 0.0.0.0/0, port: 7, mac: "02:00:00:00:00:bb"}]')
    plan = build_plan(cfg, prefix="t1")
    assert fabric_addresses(plan.switch, 7) == (FALLBACK_V4.network_address + 7,)
    assert plan.host("vm1").role == "vm"  # a name unusable for Mininet -> vm<port>
    assert plan.host("fab7").addresses == (IPv4Address("198.51.100.7"),)
    host_route = _cfg('[{vn: blue, prefix: 192.0.2.9/32, port: 7, mac: "02:00:00:00:00:bb"}]')
    assert build_plan(host_route).host("fab7").addresses == (IPv4Address("192.0.2.9"),)


def test_plan_refusals() -> None:
    two_macs = _cfg('[{vn: blue, prefix: 0.0.0.0/0, port: 7, mac: "02:00:00:00:00:bb"},'
                    ' {vn: blue, prefix: 192.0.2.0/24, port: 7, mac: "02:00:00:00:00:cc"}]')
    with pytest.raises(LabPlanError, match="different next-hop MACs"):
        build_plan(two_macs)
    ok = _cfg("[]")
    for bad in ("toolongprefix", "Caps", "1ab", ""):
        with pytest.raises(LabPlanError, match="prefix"):
            build_plan(ok, prefix=bad)
    with pytest.raises(KeyError):
        build_plan(ok, "nope")


def test_effective_config_only_when_needed(tmp_path: Path) -> None:
    cfg = load_config(LAB_YAML)
    sw = cfg.switches[0]
    same, changed = lab.effective_config(cfg, sw, address=None, p4info=None, device_config=None)
    assert same is cfg and not changed
    new, changed = lab.effective_config(cfg, sw, address="127.0.0.1:1234", p4info=tmp_path / "i",
                                        device_config=None)
    assert changed and new.switch(sw.name).address == "127.0.0.1:1234"
    assert new.switch(sw.name).p4info == (tmp_path / "i").resolve()
    assert new.switch(sw.name).vmis == sw.vmis
    api, changed = lab.effective_config(cfg, sw, address=None, p4info=None, device_config=None,
                                        api_listen="127.0.0.1:4321")
    assert changed and api.api.listen == "127.0.0.1:4321" and api.api.metrics_listen is None
    assert api.switch(sw.name) == sw


def test_dnsd_answers_a_queries() -> None:
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x07example\x03org\x00" + struct.pack("!HH", 1, 1)
    r = answer(q, IPv4Address("192.0.2.53"))
    assert r is not None
    ident, flags, qd, an = struct.unpack_from("!HHHH", r)
    assert (ident, qd, an) == (0x1234, 1, 1) and flags & 0x8000
    assert r.endswith(IPv4Address("192.0.2.53").packed)
    aaaa = q[:-4] + struct.pack("!HH", 28, 1)
    assert struct.unpack_from("!H", answer(aaaa, IPv4Address("192.0.2.53")) or b"", 6)[0] == 0
    assert answer(b"short", IPv4Address("192.0.2.53")) is None


def test_usage_names_real_hosts_and_addresses() -> None:
    plan = build_plan(load_config(LAB_YAML))
    state = lab.LabState("ffl", "/tmp/x", "c", "c", "lab1", "softswitch", "127.0.0.1:9559", 1, 255, "p",
                         hosts=[{"name": h.name, "namespace": plan.namespace(h), "role": h.role, "port": h.port,
                                 "mac": h.mac, "addresses": [str(a) for a in h.addresses], "vn": h.vn}
                                for h in plan.hosts], pids={"switch": 1, "fatflowd": 2}, api="127.0.0.1:50061")
    text = lab.usage(state)
    for line in ("ip netns exec ffl-vm1 ping -c 3 203.0.113.1", "ip netns exec ffl-vm1 iperf3 -c 203.0.113.1",
                 "ip netns exec ffl-vm1 curl", "ip netns exec ffl-vm1 dig +short @203.0.113.1",
                 "ip netns exec ffl-vm1 ping -c 3 2001:db8:ffff::1", "make lab-down",
                 ".venv/bin/fatflowctl --address 127.0.0.1:50061 flows list",
                 ".venv/bin/fatflowctl --address 127.0.0.1:50061 flows top"):
        assert line in text
    state.api = ""  # a state file of an older lab: no API line rather than a wrong one
    assert "fatflowctl" not in lab.usage(state)
