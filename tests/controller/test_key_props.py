"""Property tests of the reference key function on random rule sets and packets.

Addresses are drawn mostly from a small pool of subnets that the rules also use, so that rules, ports
and exclude entries actually hit; :func:`naive_key` is an independent, unoptimised reading of spec 3
that the compiled implementation must agree with.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from p4fatflow.config import VMI, VN, FatFlowRule, IgnoreAddress, PrefixAggr
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, address_text, compile_rules, flow_key

IPNet = IPv4Network | IPv6Network
IPAddr = IPv4Address | IPv6Address

POOL: dict[int, list[IPNet]] = {
    4: [
        ip_network(n)
        for n in ("0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "20.0.0.0/8", "20.5.0.0/16")
    ],
    6: [
        ip_network(n)
        for n in ("::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64", "2001:4860::/32")
    ],
}
PROTOCOLS = [6, 17, 132, 1, 58, 47]
PORTED = {6, 17, 132}
RULE_PORTS = [0, 53, 80, 443, 8080]
PACKET_PORTS = [53, 80, 443, 8080]
VN_RED = VN("red", 1, (ip_network("10.1.0.0/24"), ip_network("2001:db8:1::/64")))
EXCLUDE = ExcludeList(VMI("vm1", 1, VN_RED).exclude_list())
HOT_ADDRESSES: dict[int, list[IPAddr]] = {
    4: [IPv4Address(a) for a in ("10.1.0.1", "10.1.0.2", "169.254.169.254")],
    6: [IPv6Address(a) for a in ("2001:db8:1::1", "2001:db8:1::2", "fe80::1")],
}


def _in(net: IPNet, host_bits: int) -> IPAddr:
    free = net.max_prefixlen - net.prefixlen
    value = int(net.network_address) | (host_bits & ((1 << free) - 1))
    return IPv4Address(value) if net.version == 4 else IPv6Address(value)


@st.composite
def addresses(draw: st.DrawFn, version: int) -> IPAddr:
    how = draw(st.sampled_from(["pool", "pool", "pool", "hot", "any"]))
    if how == "hot":
        return draw(st.sampled_from(HOT_ADDRESSES[version]))
    if how == "pool":
        return _in(draw(st.sampled_from(POOL[version])), draw(st.integers(0, (1 << 128) - 1)))
    bits = 32 if version == 4 else 128
    value = draw(st.integers(0, (1 << bits) - 1))
    return IPv4Address(value) if version == 4 else IPv6Address(value)


@st.composite
def prefix_aggrs(draw: st.DrawFn, version: int) -> PrefixAggr:
    subnet = draw(st.sampled_from(POOL[version]))
    return PrefixAggr(subnet, draw(st.integers(subnet.prefixlen, subnet.max_prefixlen)))


@st.composite
def rules(
    draw: st.DrawFn,
    protocols: Sequence[int] = PROTOCOLS,
    ports: Sequence[int] = RULE_PORTS,
    versions: tuple[int, ...] = (4, 6),
) -> FatFlowRule:
    protocol = draw(st.sampled_from(protocols))
    port = draw(st.sampled_from(ports)) if protocol in PORTED else 0
    ignore = draw(st.sampled_from(list(IgnoreAddress)))
    version = 4 if protocol == 1 else 6 if protocol == 58 else draw(st.sampled_from(versions))
    src = draw(st.none() | prefix_aggrs(version)) if ignore is not IgnoreAddress.SRC else None
    dst = draw(st.none() | prefix_aggrs(version)) if ignore is not IgnoreAddress.DST else None
    return FatFlowRule(protocol, port, ignore, src, dst)


@st.composite
def packets(
    draw: st.DrawFn,
    protocols: Sequence[int] = PROTOCOLS,
    ports: Sequence[int] = PACKET_PORTS,
    versions: tuple[int, ...] = (4, 6),
) -> PacketFields:
    protocol = draw(st.sampled_from(protocols))
    version = 4 if protocol == 1 else 6 if protocol == 58 else draw(st.sampled_from(versions))
    port = st.sampled_from(ports) | st.integers(0, 0xFFFF)
    if protocol in PORTED:
        sport, dport = draw(port), draw(port)
    elif protocol in (1, 58):
        sport, dport = draw(st.integers(0, 0xFFFF)), 0  # echo identifier (or 0/0 for other messages)
    else:
        sport = dport = 0
    return PacketFields(draw(addresses(version)), draw(addresses(version)), protocol, sport, dport)


rule_lists = st.lists(rules(), max_size=8)
directions = st.sampled_from(list(Direction))
excludes = st.sampled_from([None, EXCLUDE])


def _local_remote(p: PacketFields, direction: Direction) -> tuple[IPAddr, IPAddr]:
    return (p.src, p.dst) if direction is Direction.FROM_VM else (p.dst, p.src)


def naive_key(
    p: PacketFields, direction: Direction, vrf: int, rs: list[FatFlowRule] | None, ex: ExcludeList | None
) -> FlowKey:
    """Spec 3 read literally, with no precomputation."""
    normal = FlowKey.normal(p, vrf)
    if rs is None or (ex is not None and any(a in n for a in (p.src, p.dst) for n in ex.networks)):
        return normal
    local, remote = _local_remote(p, direction)
    port, side = 0, None
    if p.protocol in PORTED:
        ports = {r.port for r in rs if r.protocol == p.protocol and r.port != 0}
        hits = [(p.sport, "sport")] if p.sport in ports else []
        if p.dport in ports:
            hits.append((p.dport, "dport"))
        if hits:
            # smaller port wins; on a tie dport ("dport" > "sport" sorts last, so negate via key)
            port, side = min(hits, key=lambda h: (h[0], h[1] != "dport"))

    def applies(r: FatFlowRule) -> bool:
        for aggr, addr in ((r.src_prefix_aggr, local), (r.dst_prefix_aggr, remote)):
            if aggr is not None and (aggr.version != addr.version or addr not in aggr.subnet):
                return False
        return True

    def rank(item: tuple[int, FatFlowRule]) -> tuple[int, int, int, int]:
        i, r = item
        s, d = r.src_prefix_aggr, r.dst_prefix_aggr
        tier = (s is not None) + 2 * (d is not None)  # 0 port-only, 1 src, 2 dst, 3 both
        return (tier, -(s.subnet.prefixlen if s else 0), -(d.subnet.prefixlen if d else 0), i)

    candidates = [
        (i, r) for i, r in enumerate(rs) if r.protocol == p.protocol and r.port == port and applies(r)
    ]
    if not candidates:
        return normal
    _, rule = min(candidates, key=rank)

    def shape(addr: IPAddr, ignored: bool, aggr: PrefixAggr | None) -> tuple[IPAddr, int]:
        if ignored:
            return (IPv4Address(0) if addr.version == 4 else IPv6Address(0)), 0
        if aggr is None:
            return addr, addr.max_prefixlen
        net = ip_network((addr, aggr.plen), strict=False)
        return net.network_address, aggr.plen

    la, lp = shape(local, rule.ignore_address is IgnoreAddress.SRC, rule.src_prefix_aggr)
    ra, rp = shape(remote, rule.ignore_address is IgnoreAddress.DST, rule.dst_prefix_aggr)
    sport = port if side == "sport" else 0
    dport = port if side == "dport" else 0
    if direction is Direction.FROM_VM:
        return FlowKey(vrf, la, ra, p.protocol, sport, dport, lp, rp)
    return FlowKey(vrf, ra, la, p.protocol, sport, dport, rp, lp)


def _key(
    p: PacketFields, direction: Direction, rs: list[FatFlowRule] | None, ex: ExcludeList | None
) -> FlowKey:
    return flow_key(p, direction, 1, None if rs is None else compile_rules(rs), ex)


@settings(max_examples=500)
@given(rs=rule_lists, data=st.data(), direction=directions, ex=excludes)
def test_compiled_key_agrees_with_naive_reading_of_the_spec(
    rs: list[FatFlowRule], data: st.DataObject, direction: Direction, ex: ExcludeList | None
) -> None:
    # Mostly packets of a configured protocol, so that rules compete.
    p = data.draw(packets(sorted({r.protocol for r in rs})) if rs else packets())
    assert _key(p, direction, rs, ex) == naive_key(p, direction, 1, rs, ex)


@settings(max_examples=500)
@given(
    rs=st.lists(rules([6], [0, 443], (4,)), min_size=2, max_size=8)
    | st.lists(rules([6], [443], (4,)).filter(lambda r: not r.is_port_only), min_size=2, max_size=8),
    p=packets([6], [443], (4,)),
    direction=directions,
    ex=excludes,
)
def test_compiled_key_agrees_with_naive_reading_of_the_spec_dense(
    rs: list[FatFlowRule], p: PacketFields, direction: Direction, ex: ExcludeList | None
) -> None:
    # One protocol, few ports, one family (and half the time only prefix rules): many rules compete
    # for the same packet, exercising the order within and between the tiers.
    assert _key(p, direction, rs, ex) == naive_key(p, direction, 1, rs, ex)


@st.composite
def aggregated_pairs(draw: st.DrawFn) -> tuple[FatFlowRule, PacketFields, PacketFields]:
    """A single aggregating rule and two from-VM packets that agree on every aggregation prefix, whose
    ignored addresses are arbitrary, and whose zeroed port differs."""
    r = draw(rules().filter(lambda r: not r.is_port_only))
    version = r.version
    assert version is not None

    def pair(ignored: bool, aggr: PrefixAggr | None) -> tuple[IPAddr, IPAddr]:
        if ignored:
            return draw(addresses(version)), draw(addresses(version))
        net = aggr.subnet if aggr is not None else draw(st.sampled_from(POOL[version]))
        first = _in(net, draw(st.integers(0, (1 << 128) - 1)))
        if aggr is None:
            return first, first
        low = (1 << (net.max_prefixlen - aggr.plen)) - 1
        second_value = (int(first) & ~low) | (draw(st.integers(0, (1 << 128) - 1)) & low)
        return first, (IPv4Address(second_value) if version == 4 else IPv6Address(second_value))

    l1, l2 = pair(r.ignore_address is IgnoreAddress.SRC, r.src_prefix_aggr)
    r1, r2 = pair(r.ignore_address is IgnoreAddress.DST, r.dst_prefix_aggr)
    # The rule's port as dport and a client port that is not it (port-0 rules: any two ports);
    # ICMP: two echo identifiers; other protocols have no ports.
    client = st.integers(1, 0xFFFF).filter(lambda x: x != r.port)

    def ports() -> tuple[int, int]:
        if r.protocol in PORTED:
            return draw(client), (r.port if r.port else draw(client))
        return (draw(client), 0) if r.protocol in (1, 58) else (0, 0)

    p1 = PacketFields(l1, r1, r.protocol, *ports())
    p2 = PacketFields(l2, r2, r.protocol, *ports())
    return r, p1, p2


@given(case=aggregated_pairs())
def test_packets_agreeing_on_aggregation_prefixes_share_a_key(
    case: tuple[FatFlowRule, PacketFields, PacketFields],
) -> None:
    r, p1, p2 = case
    k1 = _key(p1, Direction.FROM_VM, [r], None)
    k2 = _key(p2, Direction.FROM_VM, [r], None)
    assert k1 == k2
    # The rule really applied (the pair is not equal by being two identical normal flows).
    if r.src_prefix_aggr is not None:
        assert k1.src_plen == r.src_prefix_aggr.plen
    if r.dst_prefix_aggr is not None:
        assert k1.dst_plen == r.dst_prefix_aggr.plen
    assert (k1.sport, k1.dport) == (0, r.port)


@settings(max_examples=300)
@given(rs=rule_lists, p=packets(), direction=directions, ex=excludes)
def test_key_addresses_are_masked_and_plens_in_range(
    rs: list[FatFlowRule], p: PacketFields, direction: Direction, ex: ExcludeList | None
) -> None:
    k = _key(p, direction, rs, ex)
    top = 32 if p.version == 4 else 128
    configured = {a.plen for r in rs for a in (r.src_prefix_aggr, r.dst_prefix_aggr) if a is not None}
    for addr, plen in ((k.src, k.src_plen), (k.dst, k.dst_plen)):
        assert addr.version == p.version
        assert 0 <= plen <= top
        assert plen in configured | {0, top}
        assert int(addr) & ((1 << (top - plen)) - 1) == 0
        if plen == 0:
            assert int(addr) == 0
    assert (k.vrf, k.protocol) == (1, p.protocol)
    assert k.sport in (0, p.sport) and k.dport in (0, p.dport)


def _reverse(p: PacketFields) -> PacketFields:
    return PacketFields(p.dst, p.src, p.protocol, p.dport, p.sport)


@settings(max_examples=300)
@given(rs=rule_lists, p=packets(), ex=excludes)
def test_reply_aggregates_the_same_local_subnet(
    rs: list[FatFlowRule], p: PacketFields, ex: ExcludeList | None
) -> None:
    forward = _key(p, Direction.FROM_VM, rs, ex)
    reply = _key(_reverse(p), Direction.TO_VM, rs, ex)
    assert (reply.dst, reply.dst_plen) == (forward.src, forward.src_plen)
    assert (reply.src, reply.src_plen) == (forward.dst, forward.dst_plen)
    if p.protocol in PORTED and p.sport != p.dport:
        # On a sport == dport tie both directions keep the dport, so only distinct ports mirror.
        assert (reply.sport, reply.dport) == (forward.dport, forward.sport)


@settings(max_examples=300)
@given(rs=rule_lists, p=packets(), direction=directions, ex=excludes)
def test_no_rule_touches_a_protocol_it_is_not_configured_for(
    rs: list[FatFlowRule], p: PacketFields, direction: Direction, ex: ExcludeList | None
) -> None:
    others = [r for r in rs if r.protocol != p.protocol]
    assert _key(p, direction, others, ex) == FlowKey.normal(p, 1)
    # Adding rules of other protocols never changes the key of this packet.
    own = [r for r in rs if r.protocol == p.protocol]
    assert _key(p, direction, rs, ex) == _key(p, direction, own, ex)


@given(rs=rule_lists, p=packets(), direction=directions)
def test_excluded_packets_are_normal_flows(
    rs: list[FatFlowRule], p: PacketFields, direction: Direction
) -> None:
    k = _key(p, direction, rs, EXCLUDE)
    if p.src in EXCLUDE or p.dst in EXCLUDE:
        assert k == FlowKey.normal(p, 1)


@given(rs=rule_lists, p=packets(), direction=directions, ex=excludes)
def test_rule_order_between_vmi_and_vn_levels_only_breaks_ties(
    rs: list[FatFlowRule], p: PacketFields, direction: Direction, ex: ExcludeList | None
) -> None:
    # A rule set whose rules all differ in tier or prefix length gives the same key in any order.
    def signature(r: FatFlowRule) -> tuple[Any, ...]:
        s, d = r.src_prefix_aggr, r.dst_prefix_aggr
        return (r.protocol, r.port, r.version, s.subnet if s else None, d.subnet if d else None)

    distinct = list({signature(r): r for r in rs}.values())
    assume(len(distinct) >= 2)
    assert _key(p, direction, distinct, ex) == _key(p, direction, distinct[::-1], ex)


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6),
                 st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xDB8]), min_size=8, max_size=8).map(
                     lambda hextets: IPv6Address(b"".join(h.to_bytes(2, "big") for h in hextets))),
                 st.ip_addresses(v=4).map(lambda a: IPv6Address(f"::ffff:{a}")),
                 st.ip_addresses(v=4).map(lambda a: IPv6Address(f"::{a}"))))
def test_address_text_is_str(addr: IPv4Address | IPv6Address) -> None:
    assert address_text(addr) == str(addr)
