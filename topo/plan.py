"""One switch of a fatflowd configuration -> the hosts of a lab around it (pure, no I/O).

The lab is derived from the same YAML file fatflowd reads, so the two cannot disagree:

- one **VM host** per VMI, on the VMI's port, with the VMI's ``mac`` and ``addresses`` (as /32 and
  /128), a default route per family via the VN's gateway (the subnet's .1 / ::1) and a static
  neighbour entry mapping that gateway to the switch's ``router_mac``;
- one **fabric host** per fabric port, with the MAC of the routes to that port (the switch rewrites
  the destination MAC to the route's ``mac``, so the host must own it), an address per family (see
  :func:`fabric_addresses`), routes back to the subnets of every VN of the port's VRF via their
  gateways, and the same static neighbour entries;
- one **analyzer host** on the analyzer port, if one is configured (and it is not the CPU port):
  no addresses, it only receives mirrored copies.

Static neighbours are required: the pipeline routes IP only and drops everything else (no ARP,
docs/pipeline.md), and Neighbour Discovery would be routed like any IPv6 packet. IPv6 hosts get no
link-local address, no DAD, no router solicitations, so they send nothing on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Literal

from p4fatflow.settings import FatflowConfig, SwitchConfig, format_mac

__all__ = ["LabHost", "LabPlan", "LabPlanError", "build_plan", "fabric_addresses", "gateway_of",
           "FALLBACK_V4", "FALLBACK_V6", "MAX_PREFIX_LEN"]

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Role = Literal["vm", "fabric", "analyzer"]

FALLBACK_V4 = IPv4Network("198.51.100.0/24")  # fabric host address when only a default route leads there
FALLBACK_V6 = IPv6Network("2001:db8:ffff:ffff::/64")
MAX_PREFIX_LEN = 8  # interface names are <prefix>-p<port>, at most 15 characters
_HOST_NAME = re.compile(r"[a-z][a-z0-9]{0,9}")  # Mininet: <host>-eth0 within 15 characters


class LabPlanError(ValueError):
    """The configuration cannot be turned into a lab (the message says why)."""


@dataclass(frozen=True, slots=True)
class LabHost:
    """A host on one switch port. ``routes`` are (destination, gateway); ``neighbours`` (ip, mac)."""

    name: str
    role: Role
    port: int
    mac: str
    addresses: tuple[Address, ...] = ()
    routes: tuple[tuple[Network, Address], ...] = ()
    neighbours: tuple[tuple[Address, str], ...] = ()
    vn: str = ""

    @property
    def has_v6(self) -> bool:
        return any(a.version == 6 for a in self.addresses)

    def address(self, version: int = 4) -> Address | None:
        return next((a for a in self.addresses if a.version == version), None)

    def setup_commands(self, ifname: str, *, offload: bool = True) -> list[list[str]]:
        """The commands that configure this host, run inside it (``ip netns exec`` or Mininet's
        ``host.cmd``), its interface already there and named ``ifname``."""
        sysctl = ["sysctl", "-q", "-w"]
        v6 = f"net.ipv6.conf.{ifname}"
        cmds = [["ip", "link", "set", "lo", "up"], [*sysctl, f"{v6}.disable_ipv6=1"]]
        if self.has_v6:  # re-enabled after: no link-local address, no DAD, no RS (nothing sent unasked)
            cmds += [[*sysctl, f"{v6}.{k}={v}"] for k, v in (("addr_gen_mode", 1), ("accept_dad", 0),
                                                             ("router_solicitations", 0), ("accept_ra", 0),
                                                             ("disable_ipv6", 0))]
        cmds.append(["ip", "link", "set", "dev", ifname, "address", self.mac])
        if offload:  # frames leave with complete checksums and at most MTU size (the switch copies bytes)
            cmds.append(["ethtool", "-K", ifname, "rx", "off", "tx", "off", "sg", "off"])
        cmds.append(["ip", "link", "set", "dev", ifname, "up"])
        for a in self.addresses:
            if a.version == 4:
                cmds.append(["ip", "addr", "add", f"{a}/32", "dev", ifname])
            else:
                cmds.append(["ip", "-6", "addr", "add", f"{a}/128", "dev", ifname, "nodad"])
        for ip, mac in self.neighbours:
            cmds.append(["ip", "neigh", "replace", str(ip), "lladdr", mac, "dev", ifname, "nud", "permanent"])
        for dest, via in self.routes:
            fam = "-4" if dest.version == 4 else "-6"
            where = "default" if dest.prefixlen == 0 else str(dest)
            cmds.append(["ip", fam, "route", "replace", where, "via", str(via), "dev", ifname, "onlink"])
        return cmds


@dataclass(frozen=True, slots=True)
class LabPlan:
    """The lab of one switch: its hosts, and the names of everything the lab creates."""

    prefix: str
    switch: SwitchConfig
    hosts: tuple[LabHost, ...]

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(h.port for h in self.hosts)

    def namespace(self, host: LabHost) -> str:
        return f"{self.prefix}-{host.name}"

    def switch_ifname(self, port: int) -> str:
        """The switch's end of the veth pair of ``port`` (in the root namespace)."""
        return f"{self.prefix}-p{port}"

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")

    def by_role(self, role: Role) -> tuple[LabHost, ...]:
        return tuple(h for h in self.hosts if h.role == role)


def gateway_of(subnet: Network) -> Address:
    """The VN gateway of a subnet: .1 / ::1 (spec 3.1)."""
    return subnet.network_address + 1


def _fallback_gateway(version: int) -> Address:
    return IPv4Address("169.254.255.1") if version == 4 else IPv6Address("fe80::1")


def _gateway(subnets: Iterable[Network], addr: Address) -> Address:
    for net in subnets:
        if net.version == addr.version and addr in net:
            return gateway_of(net)
    return _fallback_gateway(addr.version)


def fabric_addresses(sw: SwitchConfig, port: int) -> tuple[Address, ...]:
    """A fabric host's addresses: per family, the first address of every route to its port that
    is narrower than /0 (the address itself for a /32 or /128); when only a default route of a
    family leads there, one address from 198.51.100.0/24 or 2001:db8:ffff:ffff::/64 (the port
    number as host part). A family without routes to the port gets no address."""
    out: list[Address] = []
    for version, fallback in ((4, FALLBACK_V4), (6, FALLBACK_V6)):
        routes = [r for r in sw.routes if r.port == port and r.prefix.version == version]
        if not routes:
            continue
        mine: list[Address] = []
        for r in routes:
            net = r.prefix
            if net.prefixlen == 0:
                continue
            mine.append(net.network_address if net.prefixlen == net.max_prefixlen else net.network_address + 1)
        out += dict.fromkeys(mine) if mine else [fallback.network_address + port]
    return tuple(out)


def _host_name(name: str, fallback: str, taken: set[str]) -> str:
    low = name.lower()
    chosen = low if _HOST_NAME.fullmatch(low) and low not in taken else fallback
    if chosen in taken:
        raise LabPlanError(f"two hosts would be called {chosen!r}")
    taken.add(chosen)
    return chosen


def build_plan(cfg: FatflowConfig, switch: str | None = None, *, prefix: str = "ffl") -> LabPlan:
    """The lab of ``switch`` (default: the first switch of the file)."""
    if not re.fullmatch(r"[a-z][a-z0-9]*", prefix) or len(prefix) > MAX_PREFIX_LEN:
        raise LabPlanError(f"prefix {prefix!r}: 1-{MAX_PREFIX_LEN} lower-case letters and digits, a letter first")
    if not cfg.switches:
        raise LabPlanError("the configuration has no switch")
    sw = cfg.switch(switch) if switch is not None else cfg.switches[0]
    router = format_mac(sw.router_mac)
    hosts: list[LabHost] = []
    taken: set[str] = set()
    vns_by_vrf: dict[int, list[Network]] = {}
    for vn in cfg.vns:
        vns_by_vrf.setdefault(vn.vrf, []).extend(vn.subnets)

    for v in sw.vmis:
        routes: dict[int, tuple[Network, Address]] = {}
        for a in v.addresses:  # one default route per family, via the first address's gateway
            routes.setdefault(a.version, (ip_network("0.0.0.0/0" if a.version == 4 else "::/0"),
                                          _gateway(v.vn.subnets, a)))
        gws = dict.fromkeys(gw for _, gw in routes.values())
        hosts.append(LabHost(_host_name(v.name, f"vm{v.port}", taken), "vm", v.port, format_mac(v.mac),
                             tuple(v.addresses), tuple(routes.values()), tuple((g, router) for g in gws), v.vn.name))

    for f in sw.fabric_ports:
        macs = list(dict.fromkeys(r.mac for r in sw.routes if r.port == f.port))
        if len(macs) > 1:
            raise LabPlanError(f"fabric port {f.port}: routes with different next-hop MACs "
                               f"({', '.join(format_mac(m) for m in macs)}); a lab host has one MAC")
        # no route leads there: the host is reachable from nowhere, but still gets a unicast MAC
        mac = format_mac(macs[0]) if macs else f"02:00:00:00:fa:{f.port & 0xFF:02x}"
        addrs = fabric_addresses(sw, f.port)
        back: list[tuple[Network, Address]] = []
        subnets = vns_by_vrf.get(f.vn.vrf, [])
        for version in sorted({a.version for a in addrs}):
            fam_nets = [n for n in subnets if n.version == version]
            if fam_nets:
                back += [(n, gateway_of(n)) for n in fam_nets]
            else:  # VNs without subnets: the VMI addresses of that VRF, one by one
                for v in sw.vmis:
                    if v.vn.vrf == f.vn.vrf:
                        back += [(ip_network(a), _fallback_gateway(version)) for a in v.addresses
                                 if a.version == version]
        gws = dict.fromkeys(gw for _, gw in back)
        hosts.append(LabHost(_host_name(f"fab{f.port}", f"fab{f.port}", taken), "fabric", f.port, mac, addrs,
                             tuple(back), tuple((g, router) for g in gws), f.vn.name))

    analyzer = sw.flowtable.analyzer_port
    if analyzer is not None and analyzer != sw.cpu_port:
        hosts.append(LabHost(_host_name("analyzer", f"ana{analyzer}", taken), "analyzer", analyzer,
                             f"02:00:00:00:fe:{analyzer & 0xFF:02x}"))
    for h in hosts:  # the lab addresses must be unique (a fabric address must not be a VM's)
        for a in h.addresses:
            others = [o.name for o in hosts if o is not h and a in o.addresses]
            if others:
                raise LabPlanError(f"address {a} of host {h.name} is also on {', '.join(others)}")
    return LabPlan(prefix, sw, tuple(hosts))
