"""The controller's configuration file (YAML) -> a validated :class:`FatflowConfig` (pure).

docs/configuration.md describes every key. Reading happens in two passes: the structure
(settings_schema.py: types, ranges, unknown and missing keys) and then the meaning (this module:
rules, subnets, references between objects, port uses). Each pass reports every problem it finds
(as :class:`ConfigFileError`); the second runs only on a structurally valid file. Nothing here
does I/O except :func:`load_config` reading the file itself: paths are resolved against the
file's directory but not opened.

Decisions:

- VN, switch and VMI names are unique across the whole file (a VMI name identifies it to tools
  and, in the port table's metadata, to a restarted controller).
- A switch's ``flowtable:`` overrides the top-level one key by key, and inside ``lifetime``,
  ``digest`` and ``hold`` also key by key; ``policy_options`` is replaced as a whole.
- The analyzer port may be the CPU port (mirrored copies then reach the controller as
  packet-ins); otherwise no two uses (VMI, fabric, analyzer, CPU) share a switch port.
- An explicit route whose port is a VMI port carries that VMI's id (traffic from the fabric to it
  is to-VM for that VMI); a route to a fabric port carries none.
- A VMI address must lie in a subnet of its VN (when the VN has subnets) and may not be the
  subnet's gateway (.1) or service (.2) address.
- Two different rules of one VMI (its own and its VN's together) with the same match (protocol,
  port, subnets) conflict: only the first could ever apply, so the file is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from p4fatflow import dataplane as dp
from p4fatflow.config import (
    PORTED_PROTOCOLS,
    PROTOCOL_NUMBERS,
    VMI,
    VN,
    ConfigError,
    FatFlowRule,
    IPNetwork,
    Topology,
    parse_network,
)
from p4fatflow.policy import PolicyError, make_policy
from p4fatflow.settings_schema import (
    MAX_CONFIG_BYTES,
    ConfigFileError,
    PathT,
    Problem,
    did_you_mean,
    format_path,
    read_yaml,
    schema_problems,
)

__all__ = [
    "Problem",
    "ConfigFileError",
    "ApiSettings",
    "ExportSettings",
    "IpfixSettings",
    "TlsSettings",
    "DigestSettings",
    "HoldSettings",
    "FlowtableSettings",
    "VmiPort",
    "FabricPort",
    "Route",
    "SwitchConfig",
    "FatflowConfig",
    "MISS_POLICIES",
    "load_config",
    "parse_config",
    "parse_mac",
    "format_mac",
    "config_to_yaml",
]

MISS_POLICIES: Mapping[str, int] = MappingProxyType(
    {"forward": dp.MISS_POLICY_FORWARD, "drop": dp.MISS_POLICY_DROP, "hold": dp.MISS_POLICY_HOLD}
)
_NS_PER_MS = 1_000_000
_DEFAULT_LISTEN = "127.0.0.1:50051"  # loopback: the API is not exposed unless asked for
_DEFAULT_METRICS = "127.0.0.1:9464"


def parse_mac(text: str) -> int:
    """``02:00:00:00:00:aa`` (or with ``-``) -> 48-bit int."""
    return int(re.sub(r"[:-]", "", text), 16)


def format_mac(value: int) -> str:
    raw = f"{value:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Certificate paths (never their contents); which ones are required depends on the side."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The fatflowd gRPC API. A token is required when ``token_file`` is set (its value is never
    part of the configuration, only its path)."""

    listen: str = _DEFAULT_LISTEN
    token_file: Path | None = None
    tls: TlsSettings | None = None
    metrics_listen: str | None = _DEFAULT_METRICS


@dataclass(frozen=True, slots=True)
class IpfixSettings:
    """IPFIX export of flow records over UDP (p4fatflow.export.ipfix, docs/export.md)."""

    collector: str  # host:port
    observation_domain: int = 1
    template_refresh_s: int = 60
    periodic_s: int | None = None  # also export active flows every periodic_s seconds


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """Where flow records go besides the API's watchers; None = not exported that way."""

    ipfix: IpfixSettings | None = None


@dataclass(frozen=True, slots=True)
class DigestSettings:
    max_list_size: int = 128
    max_timeout_ns: int = 5 * _NS_PER_MS
    ack_timeout_ns: int = 1000 * _NS_PER_MS
    # Digest entries fatflowd lets wait to be decided; beyond, a list is acked and dropped (counted)
    # and its flows are learned from their next packet: memory stays bounded under a storm.
    backlog: int = 65536


@dataclass(frozen=True, slots=True)
class HoldSettings:
    per_flow: int = 3
    total: int = 4096


@dataclass(frozen=True, slots=True)
class FlowtableSettings:
    """Flow-table behaviour of a switch (already merged with the top-level defaults)."""

    max_flows: int = 65536
    lifetimes: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))  # protocol -> s
    default_lifetime: int = 60
    analyzer_port: int | None = None
    mirror_new_flows: bool = False
    digest: DigestSettings = DigestSettings()
    hold: HoldSettings = HoldSettings()
    policy: str = "default"
    policy_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def lifetime_for(self, protocol: int) -> int:
        """Seconds of idleness before a flow of ``protocol`` expires."""
        return self.lifetimes.get(protocol, self.default_lifetime)


@dataclass(frozen=True, slots=True)
class VmiPort:
    """A VMI on a switch port, with the port's flow-table settings (``mirror_new_flows`` resolved)."""

    vmi: VMI
    id: int | None
    mac: int
    addresses: tuple[IPv4Address | IPv6Address, ...]
    miss_policy: int
    flowtable: bool
    mirror_new_flows: bool
    egress_port: int

    @property
    def name(self) -> str:
        return self.vmi.name

    @property
    def port(self) -> int:
        return self.vmi.port

    @property
    def vn(self) -> VN:
        return self.vmi.vn


@dataclass(frozen=True, slots=True)
class FabricPort:
    port: int
    vn: VN
    miss_policy: int
    flowtable: bool
    mirror_new_flows: bool
    egress_port: int


@dataclass(frozen=True, slots=True)
class Route:
    vn: VN
    prefix: IPNetwork
    port: int
    mac: int


@dataclass(frozen=True, slots=True)
class SwitchConfig:
    name: str
    address: str
    device_id: int
    election_id: int
    p4info: Path
    device_config: Path
    tls: TlsSettings | None
    cpu_port: int
    router_mac: int
    flowtable: FlowtableSettings
    vmis: tuple[VmiPort, ...]
    fabric_ports: tuple[FabricPort, ...]
    routes: tuple[Route, ...]

    @property
    def topology(self) -> Topology:
        """The VNs this switch uses (config order) and its VMIs, as the existing model."""
        users: tuple[VmiPort | FabricPort | Route, ...] = (*self.vmis, *self.fabric_ports, *self.routes)
        vns = tuple(dict.fromkeys(p.vn for p in users))
        return Topology(vns, tuple(v.vmi for v in self.vmis))

    def port(self, n: int) -> VmiPort | FabricPort | None:
        ports: tuple[VmiPort | FabricPort, ...] = (*self.vmis, *self.fabric_ports)
        return next((p for p in ports if p.port == n), None)


@dataclass(frozen=True, slots=True)
class FatflowConfig:
    source: str
    api: ApiSettings
    flowtable: FlowtableSettings
    vns: tuple[VN, ...]
    switches: tuple[SwitchConfig, ...]
    export: ExportSettings = ExportSettings()

    def switch(self, name: str) -> SwitchConfig:
        for sw in self.switches:
            if sw.name == name:
                return sw
        raise KeyError(f"no switch {name!r}{did_you_mean(name, [s.name for s in self.switches])}")


# ---- reading --------------------------------------------------------------------------------------


def load_config(path: str | Path) -> FatflowConfig:
    """Read and validate a configuration file; raises ConfigFileError."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # a larger file is refused unread
    except OSError as exc:
        raise ConfigFileError([Problem(str(path), "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError([Problem(str(path), "", f"not UTF-8 text ({exc.reason})")]) from None
    return parse_config(text, str(path), path.absolute().parent)


def _p4info_table_sizes(p4info: Path) -> dict[str, int]:
    """Table name -> size from a P4Info text file; {} when it cannot be read (cached per mtime)."""
    try:
        stamp = p4info.stat().st_mtime_ns
    except OSError:
        return {}
    key = (str(p4info), stamp)
    got = _SIZES_CACHE.get(key)
    if got is None:
        try:
            from finsy.proto import p4i
            from google.protobuf import text_format

            info = text_format.Parse(p4info.read_text(), p4i.P4Info())
            got = {t.preamble.name: int(t.size) for t in info.tables}
        except Exception:  # not a P4Info: the start-up check says so
            got = {}
        if len(_SIZES_CACHE) > 16:
            _SIZES_CACHE.clear()
        _SIZES_CACHE[key] = got
    return got


_SIZES_CACHE: dict[tuple[str, int], dict[str, int]] = {}


def parse_config(text: str, source: str = "<string>", base_dir: Path | None = None) -> FatflowConfig:
    """Validate a configuration given as text; relative paths are taken from ``base_dir``."""
    data, lines = read_yaml(text, source)
    if data is None:
        raise ConfigFileError([Problem(source, "", "the file is empty")])
    problems = schema_problems(data, lines, source)
    if problems:
        raise ConfigFileError(problems)
    builder = _Builder(source, lines, base_dir if base_dir is not None else Path("."))
    cfg = builder.build(data)
    if builder.problems:
        raise ConfigFileError(sorted(builder.problems.values(), key=lambda p: (p.line or 0, p.path)))
    return cfg



_FT_DEFAULTS: dict[str, Any] = {
    "max_flows": 65536, "lifetime": {"default": 60}, "analyzer_port": None, "mirror_new_flows": False,
    "digest": {"max_list_size": 128, "max_timeout_ms": 5, "ack_timeout_ms": 1000, "backlog": 65536},
    "hold": {"per_flow": 3, "total": 4096}, "policy": "default", "policy_options": {},
}
_NESTED = ("lifetime", "digest", "hold")  # merged key by key; everything else is replaced


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = {**out.get(key, {}), **value} if key in _NESTED and value is not None else value
    return out


class _Builder:
    """Builds the model from structurally valid data, collecting every semantic problem."""

    def __init__(self, source: str, lines: Mapping[PathT, int], base_dir: Path) -> None:
        self.source = source
        self.lines = lines
        self.base_dir = base_dir
        self.problems: dict[tuple[str, str], Problem] = {}
        self.vns: dict[str, VN] = {}
        self.vmi_names: dict[str, PathT] = {}

    def problem(self, path: PathT, message: str) -> None:
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in self.lines), None)
        p = Problem(self.source, format_path(path), message, line)
        self.problems.setdefault((p.path, p.message), p)

    def path(self, raw: str | None) -> Path | None:
        return None if raw is None else self.base_dir / raw

    # -- top level

    def build(self, d: Mapping[str, Any]) -> FatflowConfig:
        api = self.api(d.get("api") or {}, ("api",))
        top_ft_raw = _merge(_FT_DEFAULTS, d.get("flowtable") or {})
        flowtable = self.flowtable(top_ft_raw, lambda k: ("flowtable", *k))
        for i, raw in enumerate(d.get("vns") or ()):
            self.vn(raw, ("vns", i))
        switches: list[SwitchConfig] = []
        seen: dict[str, int] = {}
        devices: dict[tuple[str, int], str] = {}
        for i, raw in enumerate(d["switches"]):
            where: PathT = ("switches", i)
            if raw["name"] in seen:
                self.problem((*where, "name"), f"switch {raw['name']!r} is already switches[{seen[raw['name']]}]")
            seen.setdefault(raw["name"], i)
            device = (raw["address"], raw["device_id"])
            if device in devices:
                self.problem((*where, "device_id"), f"the same device as switch {devices[device]!r}")
            devices.setdefault(device, raw["name"])
            sw = self.switch(raw, where, top_ft_raw, d.get("flowtable") or {})
            if sw is not None:
                switches.append(sw)
        export = self.export(d.get("export") or {}, ("export",))
        return FatflowConfig(self.source, api, flowtable, tuple(self.vns.values()), tuple(switches), export)

    def hostport(self, value: str, where: PathT) -> None:
        port = int(value.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            self.problem(where, f"port {port} is out of range 1-65535")

    def tls(self, raw: Mapping[str, Any] | None, where: PathT) -> TlsSettings | None:
        if raw is None:
            return None
        if (raw.get("cert") is None) != (raw.get("key") is None):
            self.problem(where, "cert and key go together (give both or neither)")
        return TlsSettings(self.path(raw.get("ca")), self.path(raw.get("cert")), self.path(raw.get("key")),
                           raw.get("server_name"))

    def api(self, d: Mapping[str, Any], where: PathT) -> ApiSettings:
        listen = d.get("listen", _DEFAULT_LISTEN)
        self.hostport(listen, (*where, "listen"))
        metrics = d.get("metrics_listen", _DEFAULT_METRICS)
        if metrics is not None:
            self.hostport(metrics, (*where, "metrics_listen"))
        return ApiSettings(listen, self.path(d.get("token_file")), self.tls(d.get("tls"), (*where, "tls")),
                           metrics)

    def export(self, d: Mapping[str, Any], where: PathT) -> ExportSettings:
        raw = d.get("ipfix")
        if raw is None:
            return ExportSettings()
        self.hostport(raw["collector"], (*where, "ipfix", "collector"))
        return ExportSettings(IpfixSettings(raw["collector"], raw.get("observation_domain", 1),
                                            raw.get("template_refresh_s", 60), raw.get("periodic_s")))

    def flowtable(self, d: Mapping[str, Any], at: Any) -> FlowtableSettings:
        """``at(key_path)`` -> the file path a (merged) value came from."""
        max_flows = d["max_flows"]
        if max_flows > 2 * dp.FLOW_TABLE_SIZE:
            self.problem(at(("max_flows",)), f"{max_flows} is more than the flow tables hold "
                         f"({dp.FLOW_TABLE_SIZE} IPv4 + {dp.FLOW_TABLE_SIZE} IPv6 = {2 * dp.FLOW_TABLE_SIZE})")
        lifetimes: dict[int, int] = {}
        origin: dict[int, str] = {}
        default = d["lifetime"].get("default", 60)
        for key, seconds in d["lifetime"].items():
            if key == "default":
                continue
            number = PROTOCOL_NUMBERS.get(key, None)
            if number is None:
                number = int(key)
                if number > 255:
                    self.problem(at(("lifetime", key)), f"protocol number {number} is out of range 0-255")
                    continue
            if number in origin:
                self.problem(at(("lifetime", key)), f"the same protocol as {origin[number]!r}")
                continue
            origin[number] = key
            lifetimes[number] = seconds
        hold = d["hold"]
        if hold["total"] < hold["per_flow"]:
            self.problem(at(("hold", "total")), f"{hold['total']} is less than per_flow ({hold['per_flow']})")
        digest = d["digest"]
        try:  # a policy's options are checked by building it, so a bad option is a config error
            make_policy(d["policy"], d["policy_options"])
        except PolicyError as exc:
            self.problem(at(("policy_options",)), str(exc))
        return FlowtableSettings(
            max_flows=max_flows,
            lifetimes=MappingProxyType(lifetimes),
            default_lifetime=default,
            analyzer_port=d["analyzer_port"],
            mirror_new_flows=d["mirror_new_flows"],
            digest=DigestSettings(digest["max_list_size"], digest["max_timeout_ms"] * _NS_PER_MS,
                                  digest["ack_timeout_ms"] * _NS_PER_MS, digest["backlog"]),
            hold=HoldSettings(hold["per_flow"], hold["total"]),
            policy=d["policy"],
            policy_options=MappingProxyType(dict(d["policy_options"])),
        )

    # -- VNs and rules

    def rules(self, raw: list[Any], where: PathT, owner: str) -> tuple[FatFlowRule, ...]:
        out: list[FatFlowRule] = []
        for i, item in enumerate(raw):
            try:
                out.append(FatFlowRule.from_dict(item))
            except ConfigError as exc:
                sub = tuple(exc.field.split(".")) if exc.field else ()
                self.problem((*where, i, *sub), f"{owner} {exc.subject}: {exc.problem}")
        return tuple(out)

    def networks(self, raw: list[Any], where: PathT) -> tuple[IPNetwork, ...]:
        out: list[IPNetwork] = []
        for i, item in enumerate(raw):
            try:
                out.append(parse_network(item))
            except ValueError as exc:
                self.problem((*where, i), str(exc))
        return tuple(out)

    def vn(self, d: Mapping[str, Any], where: PathT) -> None:
        name = d["name"]
        if name in self.vns:
            self.problem((*where, "name"), f"vn {name!r} is defined twice")
            return
        subnets = self.networks(d.get("subnets") or [], (*where, "subnets"))
        rules = self.rules(d.get("rules") or [], (*where, "rules"), f"vn {name}")
        try:
            self.vns[name] = VN(name, d["vrf"], subnets, rules)
        except ConfigError as exc:
            self.problem((*where, exc.field), exc.problem)

    def vn_ref(self, name: str, where: PathT) -> VN | None:
        vn = self.vns.get(name)
        if vn is None:
            hint = did_you_mean(name, self.vns) or f" (defined: {', '.join(self.vns) or 'none'})"
            self.problem(where, f"unknown vn {name!r}{hint}")
        return vn

    def conflicts(self, vmi: VMI, where: PathT) -> None:
        seen: dict[tuple[object, ...], FatFlowRule] = {}
        for rule in vmi.effective_rules():
            port = rule.port if rule.protocol in PORTED_PROTOCOLS else 0
            subnets = tuple(None if a is None else a.subnet for a in (rule.src_prefix_aggr, rule.dst_prefix_aggr))
            identity = (rule.protocol, port, subnets)
            first = seen.setdefault(identity, rule)
            if first != rule:
                self.problem((*where, "rules"), f"vmi {vmi.name}: rules '{first}' and '{rule}' match the same "
                             "packets (the VMI's rules and its VN's together); only the first could apply")

    # -- switches

    def switch(self, d: Mapping[str, Any], where: PathT, top_ft: Mapping[str, Any],
               top_raw: Mapping[str, Any]) -> SwitchConfig | None:
        before = len(self.problems)
        self.hostport(d["address"], (*where, "address"))
        over = d.get("flowtable") or {}

        def at(key: tuple[str, ...]) -> PathT:
            inner = over.get(key[0]) if len(key) > 1 else None
            mine = key[0] in over and (len(key) == 1 or key[0] not in _NESTED
                                       or (isinstance(inner, Mapping) and key[1] in inner))
            return (*where, "flowtable", *key) if mine else ("flowtable", *key)

        ft = self.flowtable(_merge(top_ft, over), at)
        cpu_port = d.get("cpu_port", dp.CPU_PORT)
        uses: dict[int, tuple[str, PathT]] = {cpu_port: ("the CPU port", (*where, "cpu_port"))}

        def use(port: int, what: str, path: PathT) -> None:
            if port in uses:
                self.problem(path, f"port {port} is already {uses[port][0]} ({format_path(uses[port][1])})")
            else:
                uses[port] = (what, path)

        vmis = [self.vmi(raw, (*where, "vmis", i), ft, use) for i, raw in enumerate(d.get("vmis") or ())]
        fabric = [self.fabric(raw, (*where, "fabric_ports", i), ft, use)
                  for i, raw in enumerate(d.get("fabric_ports") or ())]
        if ft.analyzer_port is not None and ft.analyzer_port != cpu_port:
            use(ft.analyzer_port, "the analyzer port", at(("analyzer_port",)))
        # From the raw entries: a port whose VMI failed for another reason is still configured
        # (one mistake, one message).
        configured = {raw["port"] for key in ("vmis", "fabric_ports") for raw in d.get(key) or ()}
        for kind, items in (("vmis", vmis), ("fabric_ports", fabric)):
            for i, p in enumerate(items):
                if p is not None and p.egress_port and p.egress_port not in configured:
                    self.problem((*where, kind, i, "egress_port"),
                                 f"port {p.egress_port} is not a VMI or fabric port of this switch")
        routes = [self.route(raw, (*where, "routes", i), configured) for i, raw in enumerate(d.get("routes") or ())]
        self.route_clashes(d, where, vmis, routes)
        if len(self.problems) > before:
            return None
        sw = SwitchConfig(
            name=d["name"], address=d["address"], device_id=d["device_id"], election_id=d.get("election_id", 1),
            p4info=self.base_dir / d["p4info"], device_config=self.base_dir / d["device_config"],
            tls=self.tls(d.get("tls"), (*where, "tls")), cpu_port=cpu_port, router_mac=parse_mac(d["router_mac"]),
            flowtable=ft, vmis=tuple(v for v in vmis if v is not None),
            fabric_ports=tuple(f for f in fabric if f is not None), routes=tuple(r for r in routes if r is not None),
        )
        self.table_fit(sw, where)
        return None if len(self.problems) > before else sw

    def table_fit(self, sw: SwitchConfig, where: PathT) -> None:
        """Every configuration table's entries fit its size in the switch's P4Info: a switch
        refuses the rows beyond (RESOURCE_EXHAUSTED), which would leave a half-applied
        configuration. Skipped when the P4Info cannot be read (the start-up check reports it)."""
        sizes = _p4info_table_sizes(sw.p4info)
        if not sizes:
            return
        from p4fatflow import desired  # desired imports this module

        try:
            state = desired.desired_state(FatflowConfig(self.source, ApiSettings(), sw.flowtable, (), (sw,)), sw, {})
        except Exception:  # a problem of its own, reported where it is made
            return
        counts: dict[str, int] = {}
        for w in state.entries.values():
            counts[w.table] = counts.get(w.table, 0) + 1
        for table, n in sorted(counts.items()):
            size = sizes.get(table)
            if size and n > size:
                self.problem(where, f"switch {sw.name} needs {n} entries in table {table}, which holds {size} "
                                    f"(size in {sw.p4info.name}): fewer rules, routes, addresses or VMIs")

    def vmi(self, d: Mapping[str, Any], where: PathT, ft: FlowtableSettings, use: Any) -> VmiPort | None:
        name = d["name"]
        if name in self.vmi_names:
            self.problem((*where, "name"), f"vmi {name!r} is already {format_path(self.vmi_names[name])}")
        self.vmi_names.setdefault(name, where)
        use(d["port"], f"vmi {name}", (*where, "port"))
        vn = self.vn_ref(d["vn"], (*where, "vn"))
        rules = self.rules(d.get("rules") or [], (*where, "rules"), f"vmi {name}")
        exclude = self.networks(d.get("exclude") or [], (*where, "exclude"))
        addresses: list[IPv4Address | IPv6Address] = []
        for i, raw in enumerate(d.get("addresses") or ()):
            try:
                addresses.append(ip_address(raw))
            except ValueError:
                self.problem((*where, "addresses", i), f"{raw!r} is not an IPv4 or IPv6 address")
                continue
            if vn is not None and vn.subnets:
                if not any(addresses[-1] in s for s in vn.subnets if s.version == addresses[-1].version):
                    self.problem((*where, "addresses", i), f"{raw} is not in any subnet of vn {vn.name}")
                elif addresses[-1] in vn.service_addresses():
                    self.problem((*where, "addresses", i), f"{raw} is vn {vn.name}'s gateway or service address")
        if vn is None:
            return None
        try:
            vmi = VMI(name, d["port"], vn, rules, exclude)
        except ConfigError as exc:
            self.problem((*where, exc.field), exc.problem)
            return None
        self.conflicts(vmi, where)
        mirror = d.get("mirror_new_flows")
        return VmiPort(vmi, d.get("id"), parse_mac(d["mac"]), tuple(addresses),
                       MISS_POLICIES[d.get("miss_policy", "forward")], d.get("flowtable", True),
                       ft.mirror_new_flows if mirror is None else mirror, d.get("egress_port", 0))

    def fabric(self, d: Mapping[str, Any], where: PathT, ft: FlowtableSettings, use: Any) -> FabricPort | None:
        use(d["port"], "a fabric port", (*where, "port"))
        vn = self.vn_ref(d["vn"], (*where, "vn"))
        if vn is None:
            return None
        mirror = d.get("mirror_new_flows")
        return FabricPort(d["port"], vn, MISS_POLICIES[d.get("miss_policy", "forward")], d.get("flowtable", True),
                          ft.mirror_new_flows if mirror is None else mirror, d.get("egress_port", 0))

    def route(self, d: Mapping[str, Any], where: PathT, configured: set[int]) -> Route | None:
        vn = self.vn_ref(d["vn"], (*where, "vn"))
        if d["port"] not in configured:
            known = ", ".join(str(p) for p in sorted(configured)) or "none"
            self.problem((*where, "port"), f"port {d['port']} is not a VMI or fabric port of this switch "
                         f"(configured: {known})")
        try:
            prefix = parse_network(d["prefix"])
        except ValueError as exc:
            self.problem((*where, "prefix"), str(exc))
            return None
        return None if vn is None else Route(vn, prefix, d["port"], parse_mac(d["mac"]))

    def route_clashes(self, d: Mapping[str, Any], where: PathT, vmis: list[VmiPort | None],
                      routes: list[Route | None]) -> None:
        """One route per (vrf, prefix): explicit routes and the VMIs' host routes together; and one
        fixed VMI id per VMI."""
        seen: dict[tuple[int, IPNetwork], PathT] = {}
        ids: dict[int, PathT] = {}
        for i, v in enumerate(vmis):
            if v is None:
                continue
            if v.id is not None:
                if v.id in ids:
                    self.problem((*where, "vmis", i, "id"), f"id {v.id} is already {format_path(ids[v.id])}")
                ids.setdefault(v.id, (*where, "vmis", i))
            for j, addr in enumerate(v.addresses):
                key = (v.vn.vrf, parse_network(f"{addr}/{addr.max_prefixlen}"))
                path: PathT = (*where, "vmis", i, "addresses", j)
                if key in seen:
                    self.problem(path, f"route {key[1]} in vrf {key[0]} is already {format_path(seen[key])}")
                seen.setdefault(key, path)
        for i, r in enumerate(routes):
            if r is None:
                continue
            key = (r.vn.vrf, r.prefix)
            path = (*where, "routes", i, "prefix")
            if key in seen:
                self.problem(path, f"route {r.prefix} in vrf {r.vn.vrf} is already {format_path(seen[key])}")
            seen.setdefault(key, path)


# ---- writing --------------------------------------------------------------------------------------


def _protocol_key(number: int) -> str:
    return next((name for name, n in PROTOCOL_NUMBERS.items() if n == number), str(number))


def _flowtable_dict(ft: FlowtableSettings) -> dict[str, Any]:
    return {
        "max_flows": ft.max_flows,
        "lifetime": {"default": ft.default_lifetime, **{_protocol_key(p): s for p, s in sorted(ft.lifetimes.items())}},
        "analyzer_port": ft.analyzer_port,
        "mirror_new_flows": ft.mirror_new_flows,
        "digest": {"max_list_size": ft.digest.max_list_size, "max_timeout_ms": ft.digest.max_timeout_ns // _NS_PER_MS,
                   "ack_timeout_ms": ft.digest.ack_timeout_ns // _NS_PER_MS, "backlog": ft.digest.backlog},
        "hold": {"per_flow": ft.hold.per_flow, "total": ft.hold.total},
        "policy": ft.policy,
        "policy_options": dict(ft.policy_options),
    }


def _opt(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _tls_dict(tls: TlsSettings | None, *, api: bool) -> dict[str, Any] | None:
    if tls is None:
        return None
    out = {"ca": _opt(tls.ca), "cert": _opt(tls.cert), "key": _opt(tls.key)}
    return out if api else {**out, "server_name": tls.server_name}


_MISS_NAMES = {v: k for k, v in MISS_POLICIES.items()}


def config_to_yaml(cfg: FatflowConfig) -> str:
    """The configuration as YAML, every value explicit and every path as resolved. Secrets are
    never part of a configuration (only paths to them), so nothing secret can be printed."""
    def port_common(p: VmiPort | FabricPort) -> dict[str, Any]:
        return {"miss_policy": _MISS_NAMES[p.miss_policy], "flowtable": p.flowtable,
                "mirror_new_flows": p.mirror_new_flows, "egress_port": p.egress_port}

    doc = {
        "version": 1,
        "api": {"listen": cfg.api.listen, "token_file": _opt(cfg.api.token_file),
                "tls": _tls_dict(cfg.api.tls, api=True), "metrics_listen": cfg.api.metrics_listen},
        "flowtable": _flowtable_dict(cfg.flowtable),
        "export": {"ipfix": None if cfg.export.ipfix is None else {
            "collector": cfg.export.ipfix.collector, "observation_domain": cfg.export.ipfix.observation_domain,
            "template_refresh_s": cfg.export.ipfix.template_refresh_s, "periodic_s": cfg.export.ipfix.periodic_s}},
        "vns": [vn.to_dict() for vn in cfg.vns],
        "switches": [{
            "name": sw.name, "address": sw.address, "device_id": sw.device_id, "election_id": sw.election_id,
            "p4info": str(sw.p4info), "device_config": str(sw.device_config),
            "tls": _tls_dict(sw.tls, api=False), "cpu_port": sw.cpu_port, "router_mac": format_mac(sw.router_mac),
            "flowtable": _flowtable_dict(sw.flowtable),
            "vmis": [{"name": v.name, "port": v.port, "vn": v.vn.name, "id": v.id, "mac": format_mac(v.mac),
                      "addresses": [str(a) for a in v.addresses], "rules": [r.to_dict() for r in v.vmi.rules],
                      "exclude": [str(n) for n in v.vmi.exclude], **port_common(v)} for v in sw.vmis],
            "fabric_ports": [{"port": f.port, "vn": f.vn.name, **port_common(f)} for f in sw.fabric_ports],
            "routes": [{"vn": r.vn.name, "prefix": str(r.prefix), "port": r.port, "mac": format_mac(r.mac)}
                       for r in sw.routes],
        } for sw in cfg.switches],
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
