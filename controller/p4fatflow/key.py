"""The reference fat-flow key function: a pure-Python mirror of the data plane (spec section 3).

The controller and the pipeline must compute identical keys (a mismatch is a flow that is installed but
never hit), so every decision below is shared with p4src/ and written down here:

(a) Pseudo-ports (:func:`l4_ports`): TCP/UDP/SCTP use their ports; ICMP/ICMPv6 echo request/reply use
    sport = echo identifier, dport = 0; every other ICMP message and every other protocol uses 0/0.
(b) Port match: the set of nonzero rule ports of the packet's protocol. If sport or dport is in it, that
    port is the matched port; if both are, the smaller wins, on a tie dport. If neither is, the port-0
    rules are consulted. ICMP/ICMPv6/other protocols always use port 0.
(c) If a port matched but none of that port's rules matches the addresses, NO rule applies (normal flow
    with both real ports): port-0 rules are only consulted when neither port matched.
(d) Precedence among the rules of the matched port (spec 3.3), first hit wins: port-only rules
    (configuration order); src-prefix rules by longest rule subnet containing the LOCAL address;
    dst-prefix rules by longest rule subnet containing the REMOTE address; src+dst rules by longest
    local subnet, then longest remote subnet, among the rules whose two subnets both contain their
    address (what a priority-ordered ternary table gives). Ties by configuration order. A prefix rule
    only applies to packets of its address family; port-only rules to both.
(e) Key: local = packet src for from-VM packets, packet dst for to-VM packets. An ignored side becomes
    0.0.0.0 / :: with plen 0, an aggregated side addr & mask with the aggregation plen, otherwise the
    whole address with plen 32/128. The key keeps the packet's orientation; the matched port stays on
    its side (sport or dport) and the other becomes 0; a port-0 rule zeroes both.
(f) The exclude list is checked first, on both packet addresses: a hit gives a normal flow.

Work that depends only on the configuration is done once in :func:`compile_rules`; per packet the key
function does a few set look-ups and integer masks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from socket import AF_INET, AF_INET6, inet_ntop
from typing import Any

from p4fatflow.config import (
    ICMP,
    ICMPV6,
    PORTED_PROTOCOLS,
    FatFlowRule,
    IgnoreAddress,
    PrefixAggr,
    merge_rules,
    protocol_label,
)

__all__ = [
    "IPAddress",
    "address_text",
    "ICMP_ECHO_TYPES",
    "ICMPV6_ECHO_TYPES",
    "Direction",
    "PortSide",
    "PacketFields",
    "FlowKey",
    "ExcludeList",
    "CompiledRules",
    "RuleMatch",
    "compile_rules",
    "l4_ports",
    "select_rule",
    "flow_key",
]

IPAddress = IPv4Address | IPv6Address

ICMP_ECHO_TYPES = frozenset({8, 0})  # echo request, echo reply
ICMPV6_ECHO_TYPES = frozenset({128, 129})  # echo request, echo reply

_ALL_ONES = {4: (1 << 32) - 1, 6: (1 << 128) - 1}
_MAX_PLEN = {4: 32, 6: 128}
_ZERO: dict[int, IPAddress] = {4: IPv4Address(0), 6: IPv6Address(0)}


def _mask(version: int, plen: int) -> int:
    top = _MAX_PLEN[version]
    return _ALL_ONES[version] ^ ((1 << (top - plen)) - 1)


def _check_port(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be an integer 0-65535, got {value!r}")


def _check_protocol(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"protocol must be an integer 0-255, got {value!r}")


def l4_ports(
    protocol: int, sport: int, dport: int, icmp_type: int | None = None, icmp_id: int | None = None
) -> tuple[int, int]:
    """The (sport, dport) a packet contributes to its flow key (decision (a)); all callers use this.

    TCP/UDP/SCTP: the real ports. ICMP/ICMPv6 echo request/reply: (identifier, 0). Other ICMP messages
    and other protocols: (0, 0). For ICMP/ICMPv6 ``icmp_type`` is required (there is no safe default:
    guessing would silently split or merge flows), and ``icmp_id`` for echo messages.
    """
    _check_protocol(protocol)
    if protocol in PORTED_PROTOCOLS:
        _check_port(sport, "sport")
        _check_port(dport, "dport")
        return sport, dport
    if protocol in (ICMP, ICMPV6):
        if icmp_type is None:
            raise ValueError(f"{protocol_label(protocol)} packet: icmp_type is required to derive its ports")
        echo = ICMP_ECHO_TYPES if protocol == ICMP else ICMPV6_ECHO_TYPES
        if icmp_type in echo:
            if icmp_id is None:
                raise ValueError(f"{protocol_label(protocol)} echo (type {icmp_type}): icmp_id is required")
            _check_port(icmp_id, "icmp_id")
            return icmp_id, 0
        return 0, 0
    return 0, 0


class Direction(StrEnum):
    """From-VM: entered on the VMI's port. To-VM: entered on a fabric port, destined to the VMI."""

    FROM_VM = "from_vm"
    TO_VM = "to_vm"


class PortSide(StrEnum):
    """Which packet port a rule matched (packet orientation), or NONE for a port-0 rule."""

    SPORT = "sport"
    DPORT = "dport"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class PacketFields:
    """The header fields the key is built from; ``sport``/``dport`` as given by :func:`l4_ports`."""

    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    protocol: int
    sport: int
    dport: int

    def __post_init__(self) -> None:
        if not isinstance(self.src, IPv4Address | IPv6Address) or not isinstance(
            self.dst, IPv4Address | IPv6Address
        ):
            raise ValueError(f"src and dst must be ipaddress objects, got {self.src!r}, {self.dst!r}")
        if self.src.version != self.dst.version:
            raise ValueError(f"src {self.src} and dst {self.dst} are of different address families")
        _check_protocol(self.protocol)
        _check_port(self.sport, "sport")
        _check_port(self.dport, "dport")

    @property
    def version(self) -> int:
        return self.src.version

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PacketFields:
        """The key-cases.json packet form (a ``direction`` key, if present, is ignored here)."""
        return cls(
            ip_address(d["src"]), ip_address(d["dst"]), int(d["protocol"]), int(d["sport"]), int(d["dport"])
        )

    def __str__(self) -> str:
        return f"{protocol_label(self.protocol)} {_endpoint(self.src, None, self.sport)} -> {_endpoint(self.dst, None, self.dport)}"


def address_text(addr: IPAddress) -> str:
    """``str(addr)``, several times faster: inet_ntop writes RFC 5952 text as ipaddress does, except
    for IPv6 addresses with an IPv4 tail (``::ffff:1.2.3.4``), left to ipaddress."""
    if addr.version == 4:
        return inet_ntop(AF_INET, addr.packed)
    text = inet_ntop(AF_INET6, addr.packed)
    return str(addr) if "." in text else text


def _endpoint(addr: IPAddress, plen: int | None, port: int, text: str | None = None) -> str:
    text = address_text(addr) if text is None else text
    if addr.version == 6:
        text = f"[{text}]"
    if plen is not None:
        text += f"/{plen}"
    return f"{text}:{port}"


@dataclass(frozen=True, slots=True, order=True)
class FlowKey:
    """A flow-table key (spec 3.4), in the packet's own orientation.

    Invariants (checked): both addresses of one family, plens 0..32/128, addresses masked to their plen.
    Ordering compares fields in order; keys of different address families do not compare (TypeError,
    as for ipaddress objects) - sort mixed sets with :meth:`sort_key`.
    """

    vrf: int
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    protocol: int
    sport: int
    dport: int
    src_plen: int
    dst_plen: int

    def __post_init__(self) -> None:
        if isinstance(self.vrf, bool) or not isinstance(self.vrf, int) or self.vrf < 0:
            raise ValueError(f"vrf must be a non-negative integer, got {self.vrf!r}")
        if not isinstance(self.src, IPv4Address | IPv6Address) or not isinstance(
            self.dst, IPv4Address | IPv6Address
        ):
            raise ValueError(f"src and dst must be ipaddress objects, got {self.src!r}, {self.dst!r}")
        if self.src.version != self.dst.version:
            raise ValueError(f"src {self.src} and dst {self.dst} are of different address families")
        _check_protocol(self.protocol)
        _check_port(self.sport, "sport")
        _check_port(self.dport, "dport")
        top = _MAX_PLEN[self.src.version]
        for name, addr, plen in (("src", self.src, self.src_plen), ("dst", self.dst, self.dst_plen)):
            if isinstance(plen, bool) or not isinstance(plen, int) or not 0 <= plen <= top:
                raise ValueError(f"{name}_plen must be an integer 0-{top}, got {plen!r}")
            if int(addr) & ~_mask(addr.version, plen):
                raise ValueError(f"{name} {addr} has bits set beyond its prefix length {plen}")

    @property
    def version(self) -> int:
        return self.src.version

    @property
    def src_network(self) -> IPv4Network | IPv6Network:
        return ip_network((self.src, self.src_plen))

    @property
    def dst_network(self) -> IPv4Network | IPv6Network:
        return ip_network((self.dst, self.dst_plen))

    @property
    def is_normal(self) -> bool:
        """True when no aggregation shows in the key (whole addresses); the ports cannot tell more."""
        top = _MAX_PLEN[self.version]
        return self.src_plen == top and self.dst_plen == top

    def sort_key(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """A total order over keys of both families (IPv4 first)."""
        return (
            self.vrf,
            self.version,
            int(self.src),
            int(self.dst),
            self.protocol,
            self.sport,
            self.dport,
            self.src_plen,
            self.dst_plen,
        )

    @classmethod
    def normal(cls, pkt: PacketFields, vrf: int) -> FlowKey:
        """The key of a flow no rule touched: whole addresses, both ports."""
        top = _MAX_PLEN[pkt.version]
        return cls(vrf, pkt.src, pkt.dst, pkt.protocol, pkt.sport, pkt.dport, top, top)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlowKey:
        """The key-cases.json key form: vrf, src, src_plen, dst, dst_plen, protocol, sport, dport."""
        expected = {"vrf", "src", "src_plen", "dst", "dst_plen", "protocol", "sport", "dport"}
        if set(d) != expected:
            raise ValueError(f"flow key fields must be exactly {sorted(expected)}, got {sorted(d)}")
        return cls(
            vrf=d["vrf"],
            src=ip_address(d["src"]),
            dst=ip_address(d["dst"]),
            protocol=d["protocol"],
            sport=d["sport"],
            dport=d["dport"],
            src_plen=d["src_plen"],
            dst_plen=d["dst_plen"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "vrf": self.vrf,
            "src": str(self.src),
            "src_plen": self.src_plen,
            "dst": str(self.dst),
            "dst_plen": self.dst_plen,
            "protocol": self.protocol,
            "sport": self.sport,
            "dport": self.dport,
        }

    def __str__(self) -> str:
        """e.g. ``vrf 1 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53`` (IPv6 as ``[2001:db8::]/56:0``)."""
        return self.text()

    def text(self, src_text: str | None = None, dst_text: str | None = None) -> str:
        """``str(self)``, with the addresses' text when the caller has it already."""
        src = _endpoint(self.src, self.src_plen, self.sport, src_text)
        dst = _endpoint(self.dst, self.dst_plen, self.dport, dst_text)
        return f"vrf {self.vrf} {protocol_label(self.protocol)} {src} -> {dst}"


class ExcludeList:
    """Prefixes whose packets always get a normal flow (spec 3.1); membership in O(#prefix lengths)."""

    __slots__ = ("_by_version", "_networks")

    def __init__(self, networks: Iterable[IPv4Network | IPv6Network] = ()) -> None:
        nets = tuple(dict.fromkeys(networks))
        for net in nets:
            if not isinstance(net, IPv4Network | IPv6Network):
                raise TypeError(f"exclude list entries must be networks, got {net!r}")
        self._networks = nets
        # version -> ((mask, {network ints}), ...): one set look-up per distinct prefix length.
        grouped: dict[int, dict[int, set[int]]] = {4: {}, 6: {}}
        for net in nets:
            grouped[net.version].setdefault(net.prefixlen, set()).add(int(net.network_address))
        self._by_version: dict[int, tuple[tuple[int, frozenset[int]], ...]] = {
            version: tuple(
                (_mask(version, plen), frozenset(values))
                for plen, values in sorted(by_plen.items(), reverse=True)
            )
            for version, by_plen in grouped.items()
        }

    @property
    def networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return self._networks

    def __contains__(self, addr: object) -> bool:
        if not isinstance(addr, IPv4Address | IPv6Address):
            return False
        value = int(addr)
        return any(value & mask in nets for mask, nets in self._by_version[addr.version])

    def __len__(self) -> int:
        return len(self._networks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExcludeList) and set(self._networks) == set(other._networks)

    def __hash__(self) -> int:
        return hash(frozenset(self._networks))

    def __repr__(self) -> str:
        return f"ExcludeList({[str(n) for n in self._networks]})"


@dataclass(frozen=True, slots=True)
class _Side:
    """One aggregated side of a compiled rule, as integers."""

    version: int
    net: int
    net_mask: int
    aggr_mask: int
    aggr_plen: int

    def contains(self, value: int) -> bool:
        return value & self.net_mask == self.net


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: FatFlowRule
    version: int | None  # None: port-only, both families
    src: _Side | None
    dst: _Side | None

    def matches(self, version: int, local: int, remote: int) -> bool:
        if self.version is not None and self.version != version:
            return False
        if self.src is not None and not self.src.contains(local):
            return False
        return self.dst is None or self.dst.contains(remote)


def _side(aggr: PrefixAggr | None) -> _Side | None:
    if aggr is None:
        return None
    version = aggr.subnet.version
    return _Side(
        version=version,
        net=int(aggr.subnet.network_address),
        net_mask=_mask(version, aggr.subnet.prefixlen),
        aggr_mask=_mask(version, aggr.plen),
        aggr_plen=aggr.plen,
    )


def _subnet_plen(aggr: PrefixAggr | None) -> int:
    return -1 if aggr is None else aggr.subnet.prefixlen


def _tier_order(rules: Sequence[FatFlowRule]) -> tuple[FatFlowRule, ...]:
    """Spec 3.3 static order; with first-hit scanning it yields longest-prefix matches (sorts are stable,
    so equal prefix lengths keep configuration order)."""
    port_only = [r for r in rules if r.src_prefix_aggr is None and r.dst_prefix_aggr is None]
    src_only = [r for r in rules if r.src_prefix_aggr is not None and r.dst_prefix_aggr is None]
    dst_only = [r for r in rules if r.src_prefix_aggr is None and r.dst_prefix_aggr is not None]
    both = [r for r in rules if r.src_prefix_aggr is not None and r.dst_prefix_aggr is not None]
    src_only.sort(key=lambda r: -_subnet_plen(r.src_prefix_aggr))
    dst_only.sort(key=lambda r: -_subnet_plen(r.dst_prefix_aggr))
    both.sort(key=lambda r: (-_subnet_plen(r.src_prefix_aggr), -_subnet_plen(r.dst_prefix_aggr)))
    return (*port_only, *src_only, *dst_only, *both)


class CompiledRules:
    """A VMI's effective rules, precomputed for per-packet use (done once per configuration)."""

    __slots__ = ("_by_port", "_ports", "_rules")

    def __init__(self, rules: Sequence[FatFlowRule]) -> None:
        for i, rule in enumerate(rules, 1):
            if not isinstance(rule, FatFlowRule):
                raise TypeError(f"rule {i}: expected a FatFlowRule, got {type(rule).__name__}")
        self._rules: tuple[FatFlowRule, ...] = merge_rules(rules)
        grouped: dict[tuple[int, int], list[FatFlowRule]] = {}
        for rule in self._rules:
            grouped.setdefault((rule.protocol, rule.port), []).append(rule)
        ports: dict[int, set[int]] = {}
        for protocol, port in grouped:
            if port != 0:
                ports.setdefault(protocol, set()).add(port)
        self._ports: dict[int, frozenset[int]] = {p: frozenset(s) for p, s in ports.items()}
        self._by_port: dict[tuple[int, int], tuple[_CompiledRule, ...]] = {
            key: tuple(
                _CompiledRule(r, r.version, _side(r.src_prefix_aggr), _side(r.dst_prefix_aggr))
                for r in _tier_order(group)
            )
            for key, group in grouped.items()
        }

    @property
    def rules(self) -> tuple[FatFlowRule, ...]:
        """The rules as given (identical ones merged), configuration order."""
        return self._rules

    @property
    def protocols(self) -> frozenset[int]:
        return frozenset(p for p, _ in self._by_port)

    def ports(self, protocol: int) -> frozenset[int]:
        """The nonzero rule ports of ``protocol`` (decision (b))."""
        return self._ports.get(protocol, frozenset())

    def candidates(self, protocol: int, port: int) -> tuple[FatFlowRule, ...]:
        """The rules of (protocol, port) in static precedence order (decision (d))."""
        return tuple(c.rule for c in self._by_port.get((protocol, port), ()))

    def match(self, protocol: int, port: int, version: int, local: int, remote: int) -> FatFlowRule | None:
        """The first rule of (protocol, port) whose address conditions hold, or None."""
        for compiled in self._by_port.get((protocol, port), ()):
            if compiled.matches(version, local, remote):
                return compiled.rule
        return None

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"CompiledRules([{', '.join(str(r) for r in self._rules)}])"


def compile_rules(rules: Sequence[FatFlowRule]) -> CompiledRules:
    """Precompute per protocol the nonzero rule ports and per (protocol, port) the rules in precedence
    order. Identical rules merge; configuration order breaks ties."""
    return CompiledRules(rules)


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule a packet hit, the port it matched on (0 for a port-0 rule) and that port's side."""

    rule: FatFlowRule
    port: int
    side: PortSide


def _local_remote(pkt: PacketFields, direction: Direction) -> tuple[IPAddress, IPAddress]:
    if direction is Direction.FROM_VM:
        return pkt.src, pkt.dst
    if direction is Direction.TO_VM:
        return pkt.dst, pkt.src
    raise ValueError(f"direction must be a Direction, got {direction!r}")


def select_rule(
    pkt: PacketFields, direction: Direction, rules: CompiledRules | None, exclude: ExcludeList | None
) -> RuleMatch | None:
    """The rule that shapes this packet's key, or None for a normal flow (decisions (b), (c), (d), (f))."""
    local, remote = _local_remote(pkt, direction)
    if rules is None:
        return None
    if exclude is not None and (pkt.src in exclude or pkt.dst in exclude):
        return None
    protocol = pkt.protocol
    port, side = 0, PortSide.NONE
    if protocol in PORTED_PROTOCOLS:
        rule_ports = rules.ports(protocol)
        s_hit = pkt.sport in rule_ports
        d_hit = pkt.dport in rule_ports
        if d_hit and (not s_hit or pkt.dport <= pkt.sport):
            port, side = pkt.dport, PortSide.DPORT
        elif s_hit:
            port, side = pkt.sport, PortSide.SPORT
    rule = rules.match(protocol, port, pkt.version, int(local), int(remote))
    return None if rule is None else RuleMatch(rule, port, side)


def _shape(addr: IPAddress, ignored: bool, aggr: PrefixAggr | None) -> tuple[IPAddress, int]:
    version = addr.version
    if ignored:
        return _ZERO[version], 0
    if aggr is None:
        return addr, _MAX_PLEN[version]
    masked = int(addr) & _mask(version, aggr.plen)
    return (IPv4Address(masked) if version == 4 else IPv6Address(masked)), aggr.plen


def flow_key(
    pkt: PacketFields,
    direction: Direction,
    vrf: int,
    rules: CompiledRules | None,
    exclude: ExcludeList | None,
) -> FlowKey:
    """The flow key of ``pkt`` seen by the VMI whose ``rules`` apply (None: no VMI, normal flow)."""
    found = select_rule(pkt, direction, rules, exclude)
    if found is None:
        return FlowKey.normal(pkt, vrf)
    rule = found.rule
    local, remote = _local_remote(pkt, direction)
    local_addr, local_plen = _shape(local, rule.ignore_address is IgnoreAddress.SRC, rule.src_prefix_aggr)
    remote_addr, remote_plen = _shape(remote, rule.ignore_address is IgnoreAddress.DST, rule.dst_prefix_aggr)
    sport = found.port if found.side is PortSide.SPORT else 0
    dport = found.port if found.side is PortSide.DPORT else 0
    if direction is Direction.FROM_VM:
        return FlowKey(vrf, local_addr, remote_addr, pkt.protocol, sport, dport, local_plen, remote_plen)
    return FlowKey(vrf, remote_addr, local_addr, pkt.protocol, sport, dport, remote_plen, local_plen)
