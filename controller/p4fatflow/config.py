"""Fat-flow configuration model: rules, virtual networks (VN) and VM interfaces (VMI).

Pure data and validation (spec sections 1-3.1), no I/O. Everything that can be wrong with a
configuration is caught here, when it is loaded, and reported as a :class:`ConfigError` whose message
names the rule (e.g. ``vmi vm1 rule 2 (udp/53)``) and the field, so that nothing half-valid ever reaches
the switch.

Decisions (also in the docstrings below):

- Subnets typed with host bits set (``10.1.2.3/8``, ``2000::1/64`` as in the seed's UI example) are
  *normalised* to their network (``10.0.0.0/8``), not rejected: the operator's intent is unambiguous and
  the stored model only ever holds proper networks.
- A rule's port must be 0 for every protocol without ports (anything but TCP/UDP/SCTP): the data plane
  gives those packets ports 0/0 (ICMP echo: identifier/0, zeroed by any matching rule), so a nonzero
  port could never match.
- ICMP (1) rules may only aggregate IPv4 subnets and ICMPv6 (58) rules only IPv6 subnets: anything else
  could never match and is a configuration mistake.
- VMI rules and VN rules have no precedence over each other: :meth:`VMI.effective_rules` lists the VMI's
  rules first, then the VN's, and identical rules appear once (first occurrence kept). Order only
  matters as the tie-breaker of spec 3.3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_network,
)
from typing import Any

__all__ = [
    "IPNetwork",
    "PROTOCOL_NUMBERS",
    "PROTOCOL_NAMES",
    "PORTED_PROTOCOLS",
    "ICMP",
    "ICMPV6",
    "TCP",
    "UDP",
    "SCTP",
    "VRF_MAX",
    "SWITCH_PORT_MAX",
    "LINK_LOCAL_V4",
    "LINK_LOCAL_V6",
    "ConfigError",
    "IgnoreAddress",
    "PrefixAggr",
    "FatFlowRule",
    "VN",
    "VMI",
    "Topology",
    "protocol_number",
    "protocol_label",
    "parse_network",
    "merge_rules",
]

IPNetwork = IPv4Network | IPv6Network

ICMP = 1
TCP = 6
UDP = 17
ICMPV6 = 58
SCTP = 132

PROTOCOL_NUMBERS: Mapping[str, int] = {"tcp": TCP, "udp": UDP, "sctp": SCTP, "icmp": ICMP, "icmpv6": ICMPV6}
PROTOCOL_NAMES: Mapping[int, str] = {number: name for name, number in PROTOCOL_NUMBERS.items()}
# Only these protocols have ports in the flow key (spec 3.2; data-plane decision (a)).
PORTED_PROTOCOLS: frozenset[int] = frozenset({TCP, UDP, SCTP})

# VRF ids travel in a 16-bit field of the flow key; switch ports are v1model's bit<9> (511 is the
# drop port there, so it cannot be a VMI port).
VRF_MAX = 0xFFFF
SWITCH_PORT_MAX = 510

LINK_LOCAL_V4 = IPv4Network("169.254.0.0/16")
LINK_LOCAL_V6 = IPv6Network("fe80::/10")


class ConfigError(ValueError):
    """A configuration that cannot be loaded; the message names the rule/object and the field."""

    def __init__(self, subject: str, field: str, problem: str) -> None:
        self.subject = subject
        self.field = field
        self.problem = problem
        where = f"{subject}: " if subject else ""
        what = f"{field}: " if field else ""
        super().__init__(f"{where}{what}{problem}")

    def relabel(self, subject: str) -> ConfigError:
        """The same problem, attributed to a more precise subject (e.g. ``vmi vm1 rule 2 (udp/53)``)."""
        return ConfigError(subject, self.field, self.problem)


class IgnoreAddress(StrEnum):
    """Which address the key drops; src/dst are from the VM's point of view (local/remote)."""

    NONE = "none"
    SRC = "src"
    DST = "dst"


def protocol_number(value: object) -> int:
    """``tcp``/``udp``/``sctp``/``icmp``/``icmpv6`` (any case) or an integer 0-255 -> IP protocol number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a protocol name or number, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= 255:
            raise ValueError(f"protocol number {value} is out of range 0-255")
        return value
    if isinstance(value, str):
        number = PROTOCOL_NUMBERS.get(value.strip().lower())
        if number is None:
            names = ", ".join(PROTOCOL_NUMBERS)
            raise ValueError(f"unknown protocol {value!r} (expected one of {names} or a number 0-255)")
        return number
    raise ValueError(f"expected a protocol name or number, got {type(value).__name__} {value!r}")


def protocol_label(protocol: int) -> str:
    """Short human name of a protocol: ``udp`` or the number."""
    return PROTOCOL_NAMES.get(protocol, str(protocol))


def parse_network(value: object) -> IPNetwork:
    """An IPv4/IPv6 network from text; host bits are cleared (``10.1.2.3/8`` -> ``10.0.0.0/8``)."""
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a subnet like '10.0.0.0/8', got {type(value).__name__} {value!r}")
    if "/" not in value:
        raise ValueError(f"subnet {value!r} has no prefix length (write e.g. '10.0.0.0/8')")
    try:
        return ip_network(value.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 subnet ({exc})") from None


def _max_plen(network: IPNetwork) -> int:
    return network.max_prefixlen


def _int_field(value: object, low: int, high: int) -> int:
    # bool is an int subclass; `true` as a port is always a typo.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range {low}-{high}")
    return value


def _check_keys(
    d: Mapping[str, Any], allowed: Iterable[str], required: Iterable[str]
) -> tuple[str, str] | None:
    """(field, problem) for the first unknown or missing key, or None."""
    allowed_set = set(allowed)
    for key in d:
        if key not in allowed_set:
            return str(key), f"unknown key (allowed: {', '.join(sorted(allowed_set))})"
    for key in required:
        if key not in d:
            return key, "missing"
    return None


@dataclass(frozen=True, slots=True)
class PrefixAggr:
    """Aggregate addresses inside ``subnet`` to ``plen`` bits (spec 2: ``plen >= subnet.prefixlen``)."""

    subnet: IPv4Network | IPv6Network
    plen: int

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise ConfigError("prefix aggregation", *problem)

    def problem(self) -> tuple[str, str] | None:
        """(field, problem) if this aggregation is invalid, else None."""
        if not isinstance(self.subnet, IPv4Network | IPv6Network):
            return "subnet", f"expected an IPv4Network or IPv6Network, got {type(self.subnet).__name__}"
        if isinstance(self.plen, bool) or not isinstance(self.plen, int):
            return "plen", f"expected an integer, got {type(self.plen).__name__} {self.plen!r}"
        top = _max_plen(self.subnet)
        if self.plen > top:
            family = "IPv4" if self.subnet.version == 4 else "IPv6"
            return "plen", f"{self.plen} is longer than an {family} address ({top} bits)"
        if self.plen < self.subnet.prefixlen:
            return "plen", f"{self.plen} is shorter than the prefix length of subnet {self.subnet}"
        return None

    @property
    def version(self) -> int:
        return self.subnet.version

    @classmethod
    def from_dict(cls, d: object) -> PrefixAggr:
        """``{"subnet": "10.0.0.0/8", "plen": 28}``; raises ConfigError(field relative to this dict)."""
        if not isinstance(d, Mapping):
            raise ConfigError(
                "", "", f"expected {{'subnet': ..., 'plen': ...}}, got {type(d).__name__} {d!r}"
            )
        bad = _check_keys(d, ("subnet", "plen"), ("subnet", "plen"))
        if bad is not None:
            raise ConfigError("", *bad)
        try:
            subnet = parse_network(d["subnet"])
        except ValueError as exc:
            raise ConfigError("", "subnet", str(exc)) from None
        plen = d["plen"]
        if isinstance(plen, bool) or not isinstance(plen, int):
            raise ConfigError("", "plen", f"expected an integer, got {type(plen).__name__} {plen!r}")
        try:
            return cls(subnet, plen)
        except ConfigError as exc:
            raise exc.relabel("") from None

    def to_dict(self) -> dict[str, Any]:
        return {"subnet": str(self.subnet), "plen": self.plen}

    def __str__(self) -> str:
        return f"{self.subnet}->/{self.plen}"


def _rule_label(protocol: int, port: object) -> str:
    # ICMP rules are protocol-only, so their port (always 0 when valid) is left out.
    if port is None or (protocol in (ICMP, ICMPV6) and port == 0):
        return protocol_label(protocol)
    return f"{protocol_label(protocol)}/{port}"


_RULE_KEYS = ("protocol", "port", "ignore_address", "src_prefix_aggr", "dst_prefix_aggr")


@dataclass(frozen=True, slots=True)
class FatFlowRule:
    """One fat-flow rule (spec 2). ``src`` always means the VM's side (local), ``dst`` the remote side.

    Construction validates (raising :class:`ConfigError`); :meth:`from_dict` additionally accepts the
    key-cases.json form and names the rule with the caller's ``where``.
    """

    protocol: int
    port: int
    ignore_address: IgnoreAddress
    src_prefix_aggr: PrefixAggr | None = None
    dst_prefix_aggr: PrefixAggr | None = None

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise ConfigError(f"rule ({self.label})", *problem)

    @property
    def label(self) -> str:
        """``udp/53``, ``icmp``, ``47/0``: how error messages and tools name this rule."""
        return _rule_label(self.protocol, self.port)

    @property
    def is_port_only(self) -> bool:
        """No prefix aggregation (spec 3.3 tier 1); applies to both address families."""
        return self.src_prefix_aggr is None and self.dst_prefix_aggr is None

    @property
    def version(self) -> int | None:
        """The address family (4/6) a prefix rule applies to, None for port-only rules."""
        aggr = self.src_prefix_aggr or self.dst_prefix_aggr
        return None if aggr is None else aggr.version

    def problem(self) -> tuple[str, str] | None:
        """(field, problem) for the first thing wrong with this rule, else None."""
        if isinstance(self.protocol, bool) or not isinstance(self.protocol, int):
            return "protocol", f"expected an integer, got {type(self.protocol).__name__} {self.protocol!r}"
        if not 0 <= self.protocol <= 255:
            return "protocol", f"{self.protocol} is out of range 0-255"
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            return "port", f"expected an integer, got {type(self.port).__name__} {self.port!r}"
        if not 0 <= self.port <= 0xFFFF:
            return "port", f"{self.port} is out of range 0-65535"
        if self.port != 0 and self.protocol not in PORTED_PROTOCOLS:
            return "port", (
                f"{protocol_label(self.protocol)} has no ports: the port must be 0 "
                "(only tcp, udp and sctp rules match ports)"
            )
        if not isinstance(self.ignore_address, IgnoreAddress):
            return "ignore_address", f"expected an IgnoreAddress, got {self.ignore_address!r}"
        for name in ("src_prefix_aggr", "dst_prefix_aggr"):
            aggr = getattr(self, name)
            if aggr is not None and not isinstance(aggr, PrefixAggr):
                return name, f"expected a PrefixAggr or None, got {type(aggr).__name__}"
        # Spec 2 allowed combinations: an ignored side cannot also be aggregated.
        if self.ignore_address is IgnoreAddress.SRC and self.src_prefix_aggr is not None:
            return "src_prefix_aggr", "not allowed with ignore_address src (the src address is ignored)"
        if self.ignore_address is IgnoreAddress.DST and self.dst_prefix_aggr is not None:
            return "dst_prefix_aggr", "not allowed with ignore_address dst (the dst address is ignored)"
        src, dst = self.src_prefix_aggr, self.dst_prefix_aggr
        if src is not None and dst is not None and src.version != dst.version:
            return "dst_prefix_aggr", (
                f"subnet {dst.subnet} is IPv{dst.version} but src_prefix_aggr subnet {src.subnet} is "
                f"IPv{src.version}: one rule cannot mix address families"
            )
        for name, aggr in (("src_prefix_aggr", src), ("dst_prefix_aggr", dst)):
            if aggr is None:
                continue
            bad = aggr.problem()
            if bad is not None:
                return f"{name}.{bad[0]}", bad[1]
            if self.protocol == ICMP and aggr.version != 4:
                return f"{name}.subnet", f"icmp is IPv4-only but {aggr.subnet} is IPv6 (use icmpv6)"
            if self.protocol == ICMPV6 and aggr.version != 6:
                return f"{name}.subnet", f"icmpv6 is IPv6-only but {aggr.subnet} is IPv4 (use icmp)"
        return None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "") -> FatFlowRule:
        """Parse and validate the key-cases.json rule form.

        ``protocol`` (name or 0-255, required), ``port`` (0-65535; required except for protocols
        without ports, where it defaults to 0), ``ignore_address`` (none/src/dst, default none),
        optional ``src_prefix_aggr``/``dst_prefix_aggr`` ``{"subnet": ..., "plen": N}``.
        ``where`` (e.g. ``vmi vm1 rule 2``) prefixes every error message.
        """
        subject = where or "rule"
        if not isinstance(d, Mapping):
            raise ConfigError(subject, "", f"expected a mapping, got {type(d).__name__} {d!r}")
        if "protocol" not in d:
            raise ConfigError(subject, "protocol", "missing")
        try:
            protocol = protocol_number(d["protocol"])
        except ValueError as exc:
            raise ConfigError(subject, "protocol", str(exc)) from None
        raw_port = d.get("port", 0 if protocol not in PORTED_PROTOCOLS else None)
        label = _rule_label(protocol, raw_port)
        subject = f"{subject} ({label})"
        bad = _check_keys(d, _RULE_KEYS, ("protocol", "port") if protocol in PORTED_PROTOCOLS else ())
        if bad is not None:
            raise ConfigError(subject, *bad)
        try:
            port = _int_field(raw_port, 0, 0xFFFF)
        except ValueError as exc:
            raise ConfigError(subject, "port", str(exc)) from None
        raw_ignore = d.get("ignore_address", IgnoreAddress.NONE.value)
        try:
            ignore = IgnoreAddress(raw_ignore.strip().lower() if isinstance(raw_ignore, str) else raw_ignore)
        except ValueError:
            raise ConfigError(
                subject, "ignore_address", f"{raw_ignore!r} is not one of none, src, dst"
            ) from None
        aggrs: dict[str, PrefixAggr | None] = {}
        for name in ("src_prefix_aggr", "dst_prefix_aggr"):
            raw = d.get(name)
            if raw is None:
                aggrs[name] = None
                continue
            try:
                aggrs[name] = PrefixAggr.from_dict(raw)
            except ConfigError as exc:
                sub = f"{name}.{exc.field}" if exc.field else name
                raise ConfigError(subject, sub, exc.problem) from None
        try:
            rule = cls(protocol, port, ignore, aggrs["src_prefix_aggr"], aggrs["dst_prefix_aggr"])
        except ConfigError as exc:
            raise exc.relabel(subject) from None
        return rule

    def to_dict(self) -> dict[str, Any]:
        """The key-cases.json form; protocols with a name are written by name."""
        out: dict[str, Any] = {
            "protocol": PROTOCOL_NAMES.get(self.protocol, self.protocol),
            "port": self.port,
            "ignore_address": self.ignore_address.value,
        }
        if self.src_prefix_aggr is not None:
            out["src_prefix_aggr"] = self.src_prefix_aggr.to_dict()
        if self.dst_prefix_aggr is not None:
            out["dst_prefix_aggr"] = self.dst_prefix_aggr.to_dict()
        return out

    def __str__(self) -> str:
        parts = [self.label, f"ignore {self.ignore_address.value}"]
        if self.src_prefix_aggr is not None:
            parts.append(f"src {self.src_prefix_aggr}")
        if self.dst_prefix_aggr is not None:
            parts.append(f"dst {self.dst_prefix_aggr}")
        return " ".join(parts)


def merge_rules(*groups: Iterable[FatFlowRule]) -> tuple[FatFlowRule, ...]:
    """Concatenate rule lists in order, identical rules once (first occurrence keeps its place)."""
    return tuple(dict.fromkeys(rule for group in groups for rule in group))


def _rules_from(raw: object, owner: str) -> tuple[FatFlowRule, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise ConfigError(owner, "rules", f"expected a list of rules, got {type(raw).__name__}")
    return tuple(FatFlowRule.from_dict(item, where=f"{owner} rule {i}") for i, item in enumerate(raw, 1))


def _name_field(value: object, owner: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(owner, "name", f"expected a non-empty string, got {value!r}")
    return value


def _check_rule_objects(rules: object, owner: str) -> None:
    if not isinstance(rules, tuple):
        raise ConfigError(owner, "rules", f"expected a tuple of FatFlowRule, got {type(rules).__name__}")
    for i, rule in enumerate(rules, 1):
        if not isinstance(rule, FatFlowRule):
            raise ConfigError(f"{owner} rule {i}", "", f"expected a FatFlowRule, got {type(rule).__name__}")


@dataclass(frozen=True, slots=True)
class VN:
    """A virtual network: routing context (VRF id), subnets, and rules expanded onto all its VMIs.

    Every subnet must leave room for its gateway (.1 / ::1) and service (.2 / ::2) addresses.
    """

    name: str
    vrf: int
    subnets: tuple[IPv4Network | IPv6Network, ...] = ()
    rules: tuple[FatFlowRule, ...] = ()

    def __post_init__(self) -> None:
        owner = f"vn {self.name}"
        _name_field(self.name, "vn")
        try:
            _int_field(self.vrf, 0, VRF_MAX)
        except ValueError as exc:
            raise ConfigError(owner, "vrf", str(exc)) from None
        if not isinstance(self.subnets, tuple):
            raise ConfigError(owner, "subnets", f"expected a tuple, got {type(self.subnets).__name__}")
        for subnet in self.subnets:
            if not isinstance(subnet, IPv4Network | IPv6Network):
                raise ConfigError(owner, "subnets", f"expected networks, got {subnet!r}")
            if subnet.num_addresses < 4:
                raise ConfigError(
                    owner, "subnets", f"{subnet} is too small for a gateway (.1) and a service (.2) address"
                )
        if len(set(self.subnets)) != len(self.subnets):
            raise ConfigError(owner, "subnets", "a subnet is listed twice")
        _check_rule_objects(self.rules, owner)

    def service_addresses(self) -> tuple[IPv4Address | IPv6Address, ...]:
        """Gateway and service address of every subnet, in subnet order."""
        out: list[IPv4Address | IPv6Address] = []
        for subnet in self.subnets:
            out.append(subnet.network_address + 1)
            out.append(subnet.network_address + 2)
        return tuple(out)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VN:
        """``{"name": ..., "vrf": N, "subnets": [...], "rules": [...]}`` (subnets, rules optional)."""
        if not isinstance(d, Mapping):
            raise ConfigError("vn", "", f"expected a mapping, got {type(d).__name__} {d!r}")
        name = _name_field(d.get("name"), "vn")
        owner = f"vn {name}"
        bad = _check_keys(d, ("name", "vrf", "subnets", "rules"), ("name", "vrf"))
        if bad is not None:
            raise ConfigError(owner, *bad)
        subnets = _networks_from(d.get("subnets"), owner, "subnets")
        return cls(name, d["vrf"], subnets, _rules_from(d.get("rules"), owner))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vrf": self.vrf,
            "subnets": [str(s) for s in self.subnets],
            "rules": [r.to_dict() for r in self.rules],
        }


def _networks_from(raw: object, owner: str, fieldname: str) -> tuple[IPNetwork, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise ConfigError(owner, fieldname, f"expected a list of subnets, got {type(raw).__name__}")
    out: list[IPNetwork] = []
    for item in raw:
        try:
            out.append(parse_network(item))
        except ValueError as exc:
            raise ConfigError(owner, fieldname, str(exc)) from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class VMI:
    """A VM interface: one switch port, member of one VN, with its own rules and extra exclude prefixes."""

    name: str
    port: int
    vn: VN
    rules: tuple[FatFlowRule, ...] = ()
    exclude: tuple[IPv4Network | IPv6Network, ...] = field(default=())

    def __post_init__(self) -> None:
        _name_field(self.name, "vmi")
        owner = f"vmi {self.name}"
        try:
            _int_field(self.port, 0, SWITCH_PORT_MAX)
        except ValueError as exc:
            raise ConfigError(owner, "port", str(exc)) from None
        if not isinstance(self.vn, VN):
            raise ConfigError(owner, "vn", f"expected a VN, got {type(self.vn).__name__}")
        _check_rule_objects(self.rules, owner)
        if not isinstance(self.exclude, tuple) or not all(
            isinstance(n, IPv4Network | IPv6Network) for n in self.exclude
        ):
            raise ConfigError(owner, "exclude", "expected a tuple of networks")

    @property
    def vrf(self) -> int:
        return self.vn.vrf

    def effective_rules(self) -> tuple[FatFlowRule, ...]:
        """The VMI's rules then its VN's rules, identical rules once (no precedence between the two
        levels: configuration order only breaks ties within a tier of spec 3.3)."""
        return merge_rules(self.rules, self.vn.rules)

    def exclude_list(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """Spec 3.1, derived: for each VN subnet its gateway and service host routes, 169.254.0.0/16,
        fe80::/10, then the operator's extra prefixes; duplicates once, order kept."""
        derived: list[IPNetwork] = []
        for addr in self.vn.service_addresses():
            derived.append(ip_network(addr))
        derived += [LINK_LOCAL_V4, LINK_LOCAL_V6, *self.exclude]
        return tuple(dict.fromkeys(derived))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], vns: Mapping[str, VN]) -> VMI:
        """``{"name", "port", "vn": <vn name>, "rules": [...], "exclude": [...]}``; ``vn`` must name one of
        ``vns``."""
        if not isinstance(d, Mapping):
            raise ConfigError("vmi", "", f"expected a mapping, got {type(d).__name__} {d!r}")
        name = _name_field(d.get("name"), "vmi")
        owner = f"vmi {name}"
        bad = _check_keys(d, ("name", "port", "vn", "rules", "exclude"), ("name", "port", "vn"))
        if bad is not None:
            raise ConfigError(owner, *bad)
        vn = vns.get(d["vn"]) if isinstance(d["vn"], str) else None
        if vn is None:
            known = ", ".join(sorted(vns)) or "none defined"
            raise ConfigError(owner, "vn", f"unknown vn {d['vn']!r} (known: {known})")
        rules = _rules_from(d.get("rules"), owner)
        exclude = _networks_from(d.get("exclude"), owner, "exclude")
        return cls(name, d["port"], vn, rules, exclude)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "vn": self.vn.name,
            "rules": [r.to_dict() for r in self.rules],
            "exclude": [str(n) for n in self.exclude],
        }


@dataclass(frozen=True, slots=True)
class Topology:
    """All VNs and VMIs of a switch; names unique, one VMI per port, every VMI's VN among ``vns``."""

    vns: tuple[VN, ...] = ()
    vmis: tuple[VMI, ...] = ()

    def __post_init__(self) -> None:
        seen_vn: dict[str, VN] = {}
        for vn in self.vns:
            if vn.name in seen_vn:
                raise ConfigError(f"vn {vn.name}", "name", "defined twice")
            seen_vn[vn.name] = vn
        names: set[str] = set()
        ports: dict[int, str] = {}
        for vmi in self.vmis:
            owner = f"vmi {vmi.name}"
            if vmi.name in names:
                raise ConfigError(owner, "name", "defined twice")
            names.add(vmi.name)
            if vmi.port in ports:
                raise ConfigError(owner, "port", f"port {vmi.port} is already vmi {ports[vmi.port]}")
            ports[vmi.port] = vmi.name
            if seen_vn.get(vmi.vn.name) != vmi.vn:
                raise ConfigError(owner, "vn", f"vn {vmi.vn.name} is not part of this topology")

    def vmi_by_port(self, port: int) -> VMI | None:
        return next((v for v in self.vmis if v.port == port), None)

    def vmi(self, name: str) -> VMI | None:
        return next((v for v in self.vmis if v.name == name), None)

    def vn(self, name: str) -> VN | None:
        return next((v for v in self.vns if v.name == name), None)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Topology:
        """``{"vns": [...], "vmis": [...]}``; VMIs refer to VNs by name."""
        if not isinstance(d, Mapping):
            raise ConfigError("topology", "", f"expected a mapping, got {type(d).__name__}")
        bad = _check_keys(d, ("vns", "vmis"), ())
        if bad is not None:
            raise ConfigError("topology", *bad)
        vns = tuple(VN.from_dict(x) for x in d.get("vns") or ())
        by_name: dict[str, VN] = {}
        for vn in vns:
            if vn.name in by_name:
                raise ConfigError(f"vn {vn.name}", "name", "defined twice")
            by_name[vn.name] = vn
        vmis = tuple(VMI.from_dict(x, by_name) for x in d.get("vmis") or ())
        return cls(vns, vmis)

    def to_dict(self) -> dict[str, Any]:
        return {"vns": [v.to_dict() for v in self.vns], "vmis": [v.to_dict() for v in self.vmis]}
