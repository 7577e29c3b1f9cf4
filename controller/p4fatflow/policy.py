"""Where a flow's context is decided: the policy interface, the default policy, and two examples
(firewall-style and load-balancer-style) that show where real policies plug in.

A policy sees each new flow once, as a :class:`NewFlow` (its key fields as the pipeline reported
them, and where it came from), and returns a :class:`Decision`: verdict, egress override,
lifetime, mirror, offloaded, opaque info. It runs on the learning path for every new flow, so it
must be cheap: return shared Decision instances where it can (the defaults are cached per port and
protocol), and touch ``flow.key`` (a decoded FlowKey, built on demand) only when it needs addresses.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv6Address, ip_network
from typing import Any, Protocol

from p4fatflow.dataplane import DIRECTION_TO_VM
from p4fatflow.key import FlowKey

__all__ = ["Decision", "NewFlow", "Policy", "PortDefaults", "DefaultPolicy", "FirewallPolicy",
           "LoadBalancerPolicy", "POLICIES", "make_policy", "PolicyError"]


class PolicyError(ValueError):
    """Bad policy name or options (reported like a configuration error)."""


@dataclass(frozen=True, slots=True)
class Decision:
    drop: bool = False
    egress_port: int = 0  # 0 = the route's port
    lifetime: int = 60  # seconds; 0 = expire after each packet (not installed)
    mirror: bool = False
    offloaded: bool = False
    info: bytes = b""


@dataclass(frozen=True, slots=True)
class PortDefaults:
    """What the configuration says for flows entering on one port."""

    egress_port: int = 0
    mirror: bool = False
    lifetimes: Mapping[int, int] = field(default_factory=dict)
    default_lifetime: int = 60


class NewFlow:
    """A new flow as the policy sees it. ``key_bytes`` are the eight canonical key values."""

    __slots__ = ("__dict__", "direction", "ingress_port", "key_bytes", "version", "vmi_id")

    def __init__(self, version: int, key_bytes: list[bytes], vmi_id: int, direction: int, ingress_port: int):
        self.version = version
        self.key_bytes = key_bytes
        self.vmi_id = vmi_id
        self.direction = direction
        self.ingress_port = ingress_port

    @property
    def protocol(self) -> int:
        return self.key_bytes[3][0]

    @property
    def dst_port(self) -> int:
        return int.from_bytes(self.key_bytes[5], "big")

    @cached_property
    def key(self) -> FlowKey:
        vals = [int.from_bytes(b, "big") for b in self.key_bytes]
        addr: type[IPv4Address] | type[IPv6Address] = IPv4Address if self.version == 4 else IPv6Address
        return FlowKey(vals[0], addr(vals[1]), addr(vals[2]), vals[3], vals[4], vals[5], vals[6], vals[7])


class Policy(Protocol):
    def decide(self, flow: NewFlow, defaults: PortDefaults) -> Decision: ...


class DefaultPolicy:
    """Forward every flow with the port's defaults and the protocol's lifetime."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        if options:
            raise PolicyError(f"policy 'default' takes no options, got {sorted(options)}")
        # (id(defaults), protocol) -> (defaults, decision): the entry keeps its PortDefaults alive
        # and is checked by identity, so a new PortDefaults at a reused address never matches.
        self._cache: dict[tuple[int, int], tuple[PortDefaults, Decision]] = {}

    def decide(self, flow: NewFlow, defaults: PortDefaults) -> Decision:
        ck = (id(defaults), flow.protocol)
        hit = self._cache.get(ck)
        if hit is not None and hit[0] is defaults:
            return hit[1]
        proto = flow.protocol
        lifetime = defaults.lifetimes.get(proto, defaults.default_lifetime)
        d = Decision(egress_port=defaults.egress_port, lifetime=lifetime, mirror=defaults.mirror)
        if len(self._cache) >= 65536:
            self._cache.clear()
        self._cache[ck] = (defaults, d)
        return d


class FirewallPolicy(DefaultPolicy):
    """Example: drop flows to denied destination ports or prefixes; allow the rest by default.

    options: ``deny_ports: {tcp: [23], udp: [...]}``, ``deny_prefixes: [..]`` (remote side),
    ``drop_lifetime`` (seconds a drop verdict stays installed, default 30).
    """

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(None)
        options = dict(options or {})
        names = {"tcp": 6, "udp": 17, "sctp": 132}
        self.deny_ports: set[tuple[int, int]] = set()
        deny = options.pop("deny_ports", {}) or {}
        if not isinstance(deny, Mapping):
            raise PolicyError(f"policy firewall: deny_ports: expected a mapping like {{tcp: [23]}}, got {deny!r}")
        for proto, ports in deny.items():
            if proto not in names:
                raise PolicyError(f"policy firewall: deny_ports: unknown protocol {proto!r} (tcp, udp, sctp)")
            if not isinstance(ports, list) or not all(
                    isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 0xFFFF for p in ports):
                raise PolicyError(f"policy firewall: deny_ports.{proto}: expected a list of ports 0-65535, got {ports!r}")
            self.deny_ports.update((names[proto], p) for p in ports)
        try:
            self.deny_prefixes = tuple(ip_network(p, strict=False) for p in options.pop("deny_prefixes", []) or [])
        except ValueError as exc:
            raise PolicyError(f"policy firewall: deny_prefixes: {exc}") from None
        drop_lifetime = options.pop("drop_lifetime", 30)
        if isinstance(drop_lifetime, bool) or not isinstance(drop_lifetime, int) or drop_lifetime < 1:
            raise PolicyError(f"policy firewall: drop_lifetime: expected seconds >= 1, got {drop_lifetime!r}")
        self.drop = Decision(drop=True, lifetime=drop_lifetime)
        if options:
            raise PolicyError(f"policy firewall: unknown options {sorted(options)}")

    def decide(self, flow: NewFlow, defaults: PortDefaults) -> Decision:
        if (flow.protocol, flow.dst_port) in self.deny_ports:
            return self.drop
        if self.deny_prefixes:
            # The remote side: the destination of a from-VM flow, the source of a to-VM flow.
            remote = flow.key.src if flow.direction == DIRECTION_TO_VM else flow.key.dst
            if any(remote in net for net in self.deny_prefixes):
                return self.drop
        return super().decide(flow, defaults)


class LoadBalancerPolicy(DefaultPolicy):
    """Example: spread flows to a service over backend ports by a hash of the key, so every
    packet of a (fat) flow leaves by the same backend. options: ``backends: [port, ...]``,
    ``service_ports: [443, ...]`` (destination ports that are balanced; empty = all)."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(None)
        options = dict(options or {})
        backends = options.pop("backends", None)
        if not backends or not all(isinstance(b, int) and 0 < b <= 510 for b in backends):
            raise PolicyError("policy loadbalancer: backends must be a non-empty list of ports 1-510")
        self.backends = tuple(backends)
        self.service_ports = frozenset(int(p) for p in options.pop("service_ports", []) or [])
        if options:
            raise PolicyError(f"policy loadbalancer: unknown options {sorted(options)}")

    def decide(self, flow: NewFlow, defaults: PortDefaults) -> Decision:
        base = super().decide(flow, defaults)
        if self.service_ports and flow.dst_port not in self.service_ports:
            return base
        backend = self.backends[zlib.crc32(b"".join(flow.key_bytes)) % len(self.backends)]
        return Decision(egress_port=backend, lifetime=base.lifetime, mirror=base.mirror,
                        info=b"lb:" + backend.to_bytes(2, "big"))


POLICIES: Mapping[str, Callable[[Mapping[str, Any] | None], Policy]] = {
    "default": DefaultPolicy,
    "firewall": FirewallPolicy,
    "loadbalancer": LoadBalancerPolicy,
}


def make_policy(name: str, options: Mapping[str, Any] | None = None) -> Policy:
    factory = POLICIES.get(name)
    if factory is None:
        raise PolicyError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    return factory(options)
