"""Request -> flow key: the API's side of seed 000's ``flowtable_update`` addressing (pure).

A client names a flow by any packet 5-tuple of it (the family follows from the addresses) and a switch
plus a VMI name or a VRF. The 5-tuple becomes the flow's (fat) key by the reference key function
(key.py), exactly as the pipeline keys that packet:

- with a VMI: to-VM if dst is one of the VMI's addresses (and src is not), otherwise from-VM (any
  source: what enters on the VMI's port is from-VM in the pipeline too); the
  VMI's effective rules and exclude list apply; the VRF is its VN's;
- with only a VRF: the VMI of that VRF on the switch whose address is src (from-VM) or else dst
  (to-VM); if there is none, the flow is a transit flow and its key is the normal key;
- with neither, the VMI on the switch that owns src (or else dst).

Or the client gives the exact key (as ListFlows shows it). Every malformed field is an
INVALID_ARGUMENT naming it; an unknown switch or VMI is NOT_FOUND with a suggestion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from p4fatflow.api.errors import invalid, not_found
from p4fatflow.config import ICMP, ICMPV6, PORTED_PROTOCOLS
from p4fatflow.key import (
    CompiledRules,
    Direction,
    ExcludeList,
    FlowKey,
    PacketFields,
    compile_rules,
    flow_key,
)
from p4fatflow.settings import SwitchConfig, VmiPort
from p4fatflow.settings_schema import did_you_mean

__all__ = ["Resolved", "SwitchView", "parse_address", "packet_fields", "key_from_fields", "fat"]

_MAX_PLEN = {4: 32, 6: 128}


@dataclass(frozen=True, slots=True)
class Resolved:
    key: FlowKey
    vmi: str  # "" = none (transit)
    direction: str  # from_vm, to_vm, transit, "" (exact key given)


#: text -> address, for the addresses the API sees again and again (an application updates the flows
#: of the same subscribers and servers); bounded: emptied when full.
_ADDRESSES: dict[str, IPv4Address | IPv6Address] = {}
_ADDRESSES_MAX = 65536


def parse_address(text: str, field: str) -> IPv4Address | IPv6Address:
    got = _ADDRESSES.get(text)
    if got is not None:
        return got
    if not text:
        raise invalid(f"{field}: an IP address is required")
    try:
        got = ip_address(text.strip())
    except ValueError:
        raise invalid(f"{field}: {text!r} is not an IPv4 or IPv6 address") from None
    if len(_ADDRESSES) >= _ADDRESSES_MAX:
        _ADDRESSES.clear()
    _ADDRESSES[text] = got
    return got


def _check_range(value: int, low: int, high: int, field: str) -> None:
    if not low <= value <= high:
        raise invalid(f"{field}: {value} is out of range {low}-{high}")


def _address_pair(src: str, dst: str, prefix: str) -> tuple[IPv4Address | IPv6Address, IPv4Address | IPv6Address]:
    s = parse_address(src, f"{prefix}.src")
    d = parse_address(dst, f"{prefix}.dst")
    if s.version != d.version:
        raise invalid(f"{prefix}.dst: {d} is IPv{d.version} but src {s} is IPv{s.version}")
    return s, d


def _check_protocol_ports(protocol: int, sport: int, dport: int, prefix: str) -> None:
    _check_range(protocol, 0, 255, f"{prefix}.protocol")
    _check_range(sport, 0, 65535, f"{prefix}.sport")
    _check_range(dport, 0, 65535, f"{prefix}.dport")


def packet_fields(src: str, dst: str, protocol: int, sport: int, dport: int, prefix: str = "packet") -> PacketFields:
    """A validated packet 5-tuple (the fields named ``prefix.src`` etc. in errors)."""
    s, d = _address_pair(src, dst, prefix)
    _check_protocol_ports(protocol, sport, dport, prefix)
    if protocol not in PORTED_PROTOCOLS:
        if protocol in (ICMP, ICMPV6):
            if dport:
                raise invalid(f"{prefix}.dport: must be 0 for ICMP (sport is the echo identifier)")
        elif sport or dport:
            raise invalid(f"{prefix}.{'sport' if sport else 'dport'}: protocol {protocol} has no ports (give 0)")
    return PacketFields(s, d, protocol, sport, dport)


def key_from_fields(vrf: int, src: str, src_plen: int, dst: str, dst_plen: int, protocol: int, sport: int,
                    dport: int, prefix: str = "key") -> FlowKey:
    s, d = _address_pair(src, dst, prefix)
    _check_range(vrf, 0, 65535, f"{prefix}.vrf")
    _check_protocol_ports(protocol, sport, dport, prefix)
    top = _MAX_PLEN[s.version]
    _check_range(src_plen, 0, top, f"{prefix}.src_plen")
    _check_range(dst_plen, 0, top, f"{prefix}.dst_plen")
    try:
        return FlowKey(vrf, s, d, protocol, sport, dport, src_plen, dst_plen)
    except ValueError as exc:  # host bits beyond a prefix length
        raise invalid(f"{prefix}: {exc}") from None


def fat(key: FlowKey) -> bool:
    """A rule shaped this key: a prefix shorter than the address, or a port of a ported protocol zeroed."""
    top = _MAX_PLEN[key.version]
    if key.src_plen < top or key.dst_plen < top:
        return True
    return key.protocol in PORTED_PROTOCOLS and (key.sport == 0 or key.dport == 0)


class SwitchView:
    """One switch's configuration as the key function needs it (rules compiled once)."""

    def __init__(self, sw: SwitchConfig, vmi_ids: Mapping[str, int]) -> None:
        self.sw = sw
        self.vmi_ids = dict(vmi_ids)
        self.vmis: dict[str, VmiPort] = {v.name: v for v in sw.vmis}
        self.vrfs = {v.vmi.vrf for v in sw.vmis} | {f.vn.vrf for f in sw.fabric_ports} | {r.vn.vrf for r in sw.routes}
        self._compiled: dict[str, tuple[CompiledRules, ExcludeList]] = {}
        self._owner: dict[tuple[int, IPv4Address | IPv6Address], VmiPort] = {}
        for v in sw.vmis:
            for a in v.addresses:
                self._owner.setdefault((v.vmi.vrf, a), v)
        self.vmi_names = {i: n for n, i in self.vmi_ids.items()}

    def vmi(self, name: str) -> VmiPort:
        v = self.vmis.get(name)
        if v is None:
            raise not_found(f"vmi: no VMI {name!r} on switch {self.sw.name}{did_you_mean(name, self.vmis)}")
        return v

    def rules(self, v: VmiPort) -> tuple[CompiledRules, ExcludeList]:
        got = self._compiled.get(v.name)
        if got is None:
            got = self._compiled[v.name] = (compile_rules(v.vmi.effective_rules()), ExcludeList(v.vmi.exclude_list()))
        return got

    def owner(self, vrf: int, addr: IPv4Address | IPv6Address) -> VmiPort | None:
        return self._owner.get((vrf, addr))

    def resolve(self, pkt: PacketFields, vmi: str = "", vrf: int | None = None) -> Resolved:
        """The flow key of ``pkt`` (see the module docstring)."""
        if vmi:
            v = self.vmi(vmi)
            if vrf is not None and vrf != v.vmi.vrf:
                raise invalid(f"vrf: VMI {vmi} is in vrf {v.vmi.vrf}, not {vrf}")
            # As the pipeline sees it: a packet entering on the VMI's port is from-VM whatever its
            # source address (a VM, or a subscriber pool behind the VMI, may use many); only a
            # packet towards one of the VMI's own addresses (and not from one) is to-VM.
            if pkt.dst in v.addresses and pkt.src not in v.addresses:
                direction = Direction.TO_VM
            else:
                direction = Direction.FROM_VM
            return self._key(pkt, v, direction)
        if vrf is None:
            by_src = next((v for v in self.sw.vmis if pkt.src in v.addresses), None)
            by_dst = next((v for v in self.sw.vmis if pkt.dst in v.addresses), None)
            if by_src is not None:
                return self._key(pkt, by_src, Direction.FROM_VM)
            if by_dst is not None:
                return self._key(pkt, by_dst, Direction.TO_VM)
            raise invalid("vmi: give a VMI or a VRF (no VMI on switch "
                          f"{self.sw.name} has address {pkt.src} or {pkt.dst})")
        if vrf not in self.vrfs:
            known = ", ".join(str(x) for x in sorted(self.vrfs)) or "none"
            raise not_found(f"vrf: switch {self.sw.name} has no vrf {vrf} (it has {known})")
        owner = self.owner(vrf, pkt.src)
        if owner is not None:
            return self._key(pkt, owner, Direction.FROM_VM)
        owner = self.owner(vrf, pkt.dst)
        if owner is not None:
            return self._key(pkt, owner, Direction.TO_VM)
        return Resolved(FlowKey.normal(pkt, vrf), "", "transit")

    def _key(self, pkt: PacketFields, v: VmiPort, direction: Direction) -> Resolved:
        rules, exclude = self.rules(v)
        return Resolved(flow_key(pkt, direction, v.vmi.vrf, rules, exclude), v.name, direction.value)
