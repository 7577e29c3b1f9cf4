"""The fatflowd gRPC API (service ``fatflow.v1.Fatflow``, docs/api.md).

:class:`ApiServer` is started by :class:`~p4fatflow.daemon.Fatflowd` and serves, next to the service,
gRPC health checking (``grpc.health.v1``) and server reflection. It listens on ``cfg.api.listen``
(loopback by default); with ``token_file`` every call of the service needs ``authorization: Bearer
<token>`` (health and reflection stay open, so probes work); with ``tls`` it serves TLS (and verifies
client certificates when ``ca`` is given).

Everything goes through the switch nodes and their :class:`~p4fatflow.flows.FlowManager`; nothing
here speaks P4Runtime. :class:`FlowHub` listens to the flow layer (observers "created"/"updated",
and the record bus for ends) to keep

- a copy of each installed flow's context as this controller wrote it (so an update is one MODIFY,
  without reading the entry first; flows adopted from a previous controller are read once),
- the updates waiting for a flow that is not learned yet (applied on "created", dropped after
  ``pending_s``), and
- the watchers of WatchFlows: each has a bounded queue; a watcher that does not keep up loses
  events (counted and reported to it as ``skipped``), fatflowd never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]
from p4fatflow import dataplane as dp
from p4fatflow.api.errors import ApiError, invalid, not_found, out_of_range
from p4fatflow.api.hub import CREATED, EXPIRED, UPDATED, FlowHub
from p4fatflow.api.lookup import SwitchView, fat, key_from_fields, packet_fields
from p4fatflow.api.messages import DIRECTIONS, flow_pb, problems_pb
from p4fatflow.api.pb import SERVICE_NAME, pb, pb_grpc
from p4fatflow.flowcodec import FlowContext
from p4fatflow.flows import FlowSnapshot
from p4fatflow.key import FlowKey
from p4fatflow.settings import (
    MISS_POLICIES,
    ApiSettings,
    ConfigFileError,
    FatflowConfig,
    config_to_yaml,
    format_mac,
    parse_config,
)
from p4fatflow.settings_schema import did_you_mean

if TYPE_CHECKING:
    from p4fatflow.daemon import Fatflowd
    from p4fatflow.node import SwitchNode

__all__ = ["ApiServer", "FlowHub", "MAX_LIFETIME", "INFO_SIZE"]

log = logging.getLogger("p4fatflow.api")

# How long ListFlows waits for one switch's flow table before naming it unavailable.
LIST_READ_TIMEOUT_S = 3.0

MAX_LIFETIME = 365 * 24 * 3600  # one year, as the configuration
INFO_SIZE = 16
_DIRECTION_CODES = {v: k for k, v in DIRECTIONS.items()}
_MISS_NAMES = {v: k for k, v in MISS_POLICIES.items()}

#: index keys decoded to FlowKeys, per service (about 250 bytes an entry)
_FLOW_KEYS_MAX = 65536


# ---- the service ---------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Item:
    """One update request, validated and resolved."""

    node: SwitchNode
    key: bytes
    flow_key: FlowKey
    changes: dict[str, object]
    request: Any
    vmi: str
    direction: str


class FatflowService(pb_grpc.FatflowServicer):  # type: ignore[misc]
    def __init__(self, daemon: Fatflowd, hub: FlowHub) -> None:
        self.daemon = daemon
        self.hub = hub
        self._views: dict[str, tuple[int, int, SwitchView]] = {}
        self._flow_keys: dict[tuple[str, bytes], FlowKey] = {}
        self._config_lock = asyncio.Lock()

    # -- helpers
    def node(self, name: str) -> SwitchNode:
        nodes = self.daemon.nodes
        if not name:
            if len(nodes) == 1:
                return next(iter(nodes.values()))
            raise invalid(f"switch: fatflowd drives {len(nodes)} switches ({', '.join(nodes)}): name one")
        node = nodes.get(name)
        if node is None:
            raise not_found(f"switch: no switch {name!r}{did_you_mean(name, nodes)}")
        return node

    def view(self, node: SwitchNode) -> SwitchView:
        got = self._views.get(node.name)
        stamp = (id(node.sw), id(node.vmi_ids))
        if got is None or got[:2] != stamp:
            got = (*stamp, SwitchView(node.sw, node.vmi_ids))
            self._views[node.name] = got
        return got[2]

    def selector(self, sel: Any) -> tuple[SwitchNode, bytes, FlowKey, str, str]:
        node = self.node(sel.switch)
        view = self.view(node)
        which = sel.WhichOneof("flow")
        if which == "key":
            k = sel.key
            key = key_from_fields(k.vrf, k.src, k.src_plen, k.dst, k.dst_plen, k.protocol, k.sport, k.dport)
            vmi, direction = sel.vmi, ""
        elif which == "packet":
            p = sel.packet
            pkt = packet_fields(p.src, p.dst, p.protocol, p.sport, p.dport)
            r = view.resolve(pkt, sel.vmi, sel.vrf if sel.HasField("vrf") else None)
            key, vmi, direction = r.key, r.vmi, r.direction
        else:
            raise invalid("flow: give a packet (src, dst, protocol, sport, dport) or a key")
        version, values = node.codec.key_values(key)
        ikey = node.codec.index_key(version, values)
        if which == "packet" and len(self._flow_keys) < _FLOW_KEYS_MAX:
            self._flow_keys[(node.name, ikey)] = key  # its events decode it from the index key: no need
        return node, ikey, key, vmi, direction

    def changes(self, req: Any, node: SwitchNode) -> dict[str, object]:
        ch: dict[str, object] = {}
        if req.HasField("lifetime"):
            if not 1 <= req.lifetime <= MAX_LIFETIME:
                raise out_of_range(f"lifetime: {req.lifetime} s is out of range 1-{MAX_LIFETIME}")
            ch["lifetime"] = req.lifetime
        if req.HasField("offloaded"):
            ch["offloaded"] = req.offloaded
        if req.HasField("mirror"):
            if req.mirror and node.sw.flowtable.analyzer_port is None:
                raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"mirror: switch {node.name} has no analyzer_port to mirror to")
            ch["mirror"] = req.mirror
        if req.HasField("verdict"):
            if req.verdict not in (pb.VERDICT_FORWARD, pb.VERDICT_DROP):
                raise invalid("verdict: give VERDICT_FORWARD or VERDICT_DROP")
            ch["verdict_drop"] = req.verdict == pb.VERDICT_DROP
        if req.HasField("egress_port"):
            if req.egress_port and node.sw.port(req.egress_port) is None:
                ports = sorted([v.port for v in node.sw.vmis] + [f.port for f in node.sw.fabric_ports])
                raise invalid(f"egress_port: {req.egress_port} is not a VMI or fabric port of switch {node.name} "
                              f"(ports: {', '.join(map(str, ports))}; 0 = the route's port)")
            ch["egress_port"] = req.egress_port
        if req.HasField("info"):
            if len(req.info) > INFO_SIZE:
                raise invalid(f"info: {len(req.info)} bytes, at most {INFO_SIZE}")
            ch["info"] = bytes(req.info)
        return ch

    def item(self, req: Any) -> _Item:
        if not req.HasField("flow"):
            raise invalid("flow: required")
        node, key, fkey, vmi, direction = self.selector(req.flow)
        return _Item(node, key, fkey, self.changes(req, node), req, vmi, direction)

    def new_context(self, it: _Item) -> FlowContext:
        """The context of a flow installed before its first packet: the port's defaults, then the request."""
        node, flows = it.node, it.node.flows
        vp = next((v for v in node.sw.vmis if v.name == it.vmi), None)
        port = vp.port if vp else 0
        vmi_id = node.vmi_ids.get(it.vmi, 0)
        defaults = flows.port_defaults.get(port, flows.fallback_defaults) if port else flows.fallback_defaults
        lifetime = defaults.lifetimes.get(it.flow_key.protocol, defaults.default_lifetime)
        base = FlowContext(False, defaults.mirror, False, defaults.egress_port, lifetime, vmi_id,
                           port if it.direction == "from_vm" else 0, _DIRECTION_CODES.get(it.direction, 0),
                           time.time_ns(), flows.fingerprints.get(vmi_id, 0))
        return dataclasses.replace(base, **it.changes)  # type: ignore[arg-type]

    def names(self, node: SwitchNode) -> dict[int, str]:
        return self.view(node).vmi_names

    def flow_key(self, node: SwitchNode, ikey: bytes) -> FlowKey:
        """The FlowKey of an index key, decoded once (bounded cache; the codec is per switch)."""
        got = self._flow_keys.get((node.name, ikey))
        if got is None:
            if len(self._flow_keys) >= _FLOW_KEYS_MAX:
                self._flow_keys.clear()
            got = self._flow_keys[(node.name, ikey)] = node.codec.flow_key(ikey)
        return got

    async def run_updates(self, items: Sequence[_Item | ApiError], brief: bool = False) -> list[Any]:
        """Apply validated updates (errors pass through as FAILED results), one Write per switch."""
        results: list[Any] = [None] * len(items)
        by_node: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            if isinstance(it, ApiError):
                results[i] = _failed(it, getattr(it, "tag", 0))
                continue
            if not it.node.flows.active:
                results[i] = _failed(ApiError(grpc.StatusCode.UNAVAILABLE,
                                              f"switch {it.node.name} is {it.node.session.state.value}, not primary"),
                                     it.request.tag)
                continue
            by_node.setdefault(it.node.name, []).append(i)
        for name, idx in by_node.items():
            node = self.daemon.nodes[name]
            flows = node.flows
            names = self.names(node)
            known = self.hub.contexts.get(name, {})
            installed = [i for i in idx if items[i].key in flows.index]  # type: ignore[union-attr]
            if installed:
                its = [items[i] for i in installed]
                got = await flows.update_many([(it.key, it.changes) for it in its], known=known)  # type: ignore[union-attr]
                for i, it, ctx in zip(installed, its, got, strict=True):
                    assert isinstance(it, _Item)
                    if ctx is None:
                        results[i] = _failed(not_found(f"flow {it.flow_key} is not installed on switch {name}"),
                                             it.request.tag)
                    else:
                        results[i] = pb.UpdateFlowResult(status=pb.UpdateFlowResult.APPLIED, tag=it.request.tag) if (
                            brief) else pb.UpdateFlowResult(status=pb.UpdateFlowResult.APPLIED, tag=it.request.tag,
                                                            flow=flow_pb(name, it.flow_key, ctx, names))
            pre = [i for i in idx if results[i] is None and items[i].request.preinstall]  # type: ignore[union-attr]
            if pre:  # one Write for all of them (and their recycled victims)
                ctxs = [self.new_context(items[i]) for i in pre]  # type: ignore[arg-type]
                done = await flows.preinstall_many([(items[i].key, c) for i, c in zip(pre, ctxs, strict=True)])  # type: ignore[union-attr]
                for i, ctx, ok in zip(pre, ctxs, done, strict=True):
                    it = items[i]
                    assert isinstance(it, _Item)
                    results[i] = pb.UpdateFlowResult(status=pb.UpdateFlowResult.PREINSTALLED, tag=it.request.tag,
                                                     flow=flow_pb(name, it.flow_key, ctx, names)) if ok else _failed(
                        ApiError(grpc.StatusCode.ABORTED, f"switch {name} refused to install flow {it.flow_key}"),
                        it.request.tag)
            for i in idx:
                if results[i] is not None:
                    continue
                it = items[i]
                assert isinstance(it, _Item)
                if it.key in flows.index:  # type: ignore[union-attr]
                    # Learned while this request awaited the switch: its "created" event has
                    # passed, so apply now rather than wait for one that will not come.
                    (ctx,) = await flows.update_many([(it.key, it.changes)], known=known)  # type: ignore[union-attr]
                    if ctx is not None:
                        results[i] = pb.UpdateFlowResult(status=pb.UpdateFlowResult.APPLIED, tag=it.request.tag,
                                                         flow=flow_pb(name, it.flow_key, ctx, names))
                        continue
                ttl = it.request.pending_ms / 1000 if it.request.pending_ms else self.hub.pending_s
                try:
                    self.hub.add_pending(name, it.key, it.changes, ttl)
                except ApiError as exc:
                    results[i] = _failed(exc, it.request.tag)
                    continue
                f = flow_pb(name, it.flow_key, None, names)
                f.ClearField("context")
                results[i] = pb.UpdateFlowResult(status=pb.UpdateFlowResult.PENDING, tag=it.request.tag, flow=f)
        return results

    # -- flows
    async def UpdateFlow(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        result = (await self.run_updates([self.item(request)]))[0]
        if result.status == pb.UpdateFlowResult.FAILED:
            raise ApiError(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == result.code)),
                           result.message)
        return result

    async def UpdateFlows(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        items: list[_Item | ApiError] = []
        for i, req in enumerate(request.updates):
            try:
                items.append(self.item(req))
            except ApiError as exc:
                err = ApiError(exc.code, f"updates[{i}].{exc.message}")
                err.tag = req.tag  # type: ignore[attr-defined]
                items.append(err)
        return pb.UpdateFlowsResponse(results=await self.run_updates(items, request.brief))

    async def GetFlow(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        node, key, fkey, _, _ = self.selector(request)
        self.require_primary(node)
        got = (await node.flows.contexts([key])).get(key)
        if got is None:
            waiting = key in self.hub.pending.get(node.name, {})
            raise not_found(f"flow {fkey} is not installed on switch {node.name}"
                            + (" (an update waits for it to be learned)" if waiting else ""))
        ctx, packets, nbytes = got
        return flow_pb(node.name, fkey, ctx, self.names(node), packets=packets, nbytes=nbytes)

    async def DeleteFlow(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        from p4fatflow.records import Reason

        node, key, fkey, _, _ = self.selector(request)
        self.require_primary(node)
        got = (await node.flows.contexts([key])).get(key)
        if got is None or not await node.flows.remove([key], Reason.DELETED):
            raise not_found(f"flow {fkey} is not installed on switch {node.name}")
        ctx, packets, nbytes = got
        return flow_pb(node.name, fkey, ctx, self.names(node), packets=packets, nbytes=nbytes)

    def require_primary(self, node: SwitchNode) -> None:
        if not node.flows.active:
            raise ApiError(grpc.StatusCode.UNAVAILABLE, f"switch {node.name} is {node.session.state.value}, not primary")

    async def ListFlows(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        nodes = [self.node(request.switch)] if request.switch or len(self.daemon.nodes) == 1 else list(
            self.daemon.nodes.values())
        vmi_id: int | None = None
        if request.vmi:
            if len(nodes) != 1:
                owner = [n for n in nodes if request.vmi in n.vmi_ids]
                nodes = owner or nodes[:1]
            self.view(nodes[0]).vmi(request.vmi)  # NOT_FOUND with a suggestion
            vmi_id = nodes[0].vmi_ids.get(request.vmi, -1)
        if request.family not in (0, 4, 6):
            raise invalid(f"family: {request.family} (give 4, 6 or 0 for both)")
        page_size = request.page_size or 1000
        try:
            offset = int(request.page_token or "0")
        except ValueError:
            raise invalid(f"page_token: {request.page_token!r} is not a token of ListFlows") from None
        now = time.time_ns()
        rows: list[tuple[SwitchNode, FlowSnapshot, FlowKey]] = []
        live = [n for n in nodes if n.flows.active]
        # All switches read at once, each bounded: one that does not answer (a stalled stream, a
        # switch going away) is named in `unavailable` instead of holding up the others.
        got = await asyncio.gather(*(n.flows.snapshot(timeout=LIST_READ_TIMEOUT_S) for n in live),
                                   return_exceptions=True)
        unavailable = []
        for node, snaps in zip(live, got, strict=True):
            if isinstance(snaps, BaseException):
                if len(nodes) == 1:
                    raise ApiError(grpc.StatusCode.UNAVAILABLE, f"switch {node.name} did not answer: {snaps}")
                unavailable.append(node.name)
                continue
            for s in snaps:
                if request.family and s.index_key[0] != request.family:
                    continue
                if vmi_id is not None and (s.context is None or s.context.vmi_id != vmi_id):
                    continue
                k = node.codec.flow_key(s.index_key)
                if request.HasField("protocol") and k.protocol != request.protocol:
                    continue
                if request.fat_only and not fat(k):
                    continue
                rows.append((node, s, k))
        sort = request.sort
        if sort == pb.SORT_PACKETS:
            rows.sort(key=lambda r: (-r[1].packets, r[2].sort_key()))
        elif sort == pb.SORT_BYTES:
            rows.sort(key=lambda r: (-r[1].bytes, r[2].sort_key()))
        elif sort == pb.SORT_AGE:
            rows.sort(key=lambda r: (r[1].context.first_seen_ns if r[1].context else now, r[2].sort_key()))
        else:
            rows.sort(key=lambda r: (r[0].name, r[2].sort_key()))
        page = rows[offset:offset + page_size]
        out = pb.ListFlowsResponse(total=len(rows), unavailable=unavailable)
        for node, s, k in page:
            out.flows.append(flow_pb(node.name, k, s.context, self.names(node), packets=s.packets, nbytes=s.bytes,
                                     idle_ns=s.idle_ns, now_ns=now))
        if offset + page_size < len(rows):
            out.next_page_token = str(offset + page_size)
        return out

    async def WatchFlows(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        self.hub.sync()
        vmi_id: int | None = None
        if request.switch:
            self.node(request.switch)
        if request.vmi:
            owner = [n for n in self.daemon.nodes.values() if request.vmi in n.vmi_ids]
            if not owner:
                known = [v for n in self.daemon.nodes.values() for v in n.vmi_ids]
                raise not_found(f"vmi: no VMI {request.vmi!r}{did_you_mean(request.vmi, known)}")
            vmi_id = owner[0].vmi_ids[request.vmi]
        kinds = frozenset(k for k, on in ((CREATED, request.created), (UPDATED, request.updated),
                                          (EXPIRED, request.expired)) if on) or frozenset((CREATED, UPDATED, EXPIRED))
        w = self.hub.watch(request.switch, vmi_id, request.family, kinds, request.queue or 65536)
        reported = 0
        try:
            while True:
                await w.wake.wait()
                w.wake.clear()
                while w.queue or w.skipped != reported:
                    msg = pb.FlowEvents(skipped=w.skipped - reported)
                    reported = w.skipped
                    q = w.queue
                    for _ in range(min(len(q), 1000)):
                        kind, switch, key, ctx, packets, nbytes, reason, t = q.popleft()
                        node = self.daemon.nodes.get(switch)
                        if node is None:
                            continue
                        ev = msg.events.add(kind=kind, reason=reason, time_ns=t)
                        flow_pb(switch, self.flow_key(node, key), ctx, self.names(node), packets=packets,
                                nbytes=nbytes, now_ns=t, into=ev.flow)
                    yield msg
        finally:
            self.hub.watchers.discard(w)

    # -- configuration
    def base_dir(self) -> Path:
        p = self.daemon.config_path
        return p.absolute().parent if p is not None else Path.cwd()

    async def GetConfig(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        cfg = self.daemon.cfg
        return pb.GetConfigResponse(yaml=config_to_yaml(cfg), source=cfg.source, reloads=self.daemon.reloads)

    def parse(self, request: Any) -> FatflowConfig:
        return parse_config(request.yaml, request.source or "<api>", self.base_dir())

    async def ValidateConfig(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            cfg = self.parse(request)
        except ConfigFileError as exc:
            return pb.ValidateConfigResponse(valid=False, problems=problems_pb(exc))
        return pb.ValidateConfigResponse(valid=True, normalized_yaml=config_to_yaml(cfg),
                                         switches=[s.name for s in cfg.switches])

    async def ApplyConfig(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            cfg = self.parse(request)
        except ConfigFileError as exc:
            return pb.ApplyConfigResponse(valid=False, problems=problems_pb(exc))
        return await self.apply(cfg)

    async def apply(self, cfg: FatflowConfig) -> Any:
        async with self._config_lock:
            before = set(self.daemon.nodes)
            reports = await self.daemon.apply(cfg)
            self.hub.sync()
        out = pb.ApplyConfigResponse(valid=True, stopped=sorted(before - {s.name for s in cfg.switches}))
        for r in reports:
            out.switches.add(switch=r.switch, inserted=r.inserted, modified=r.modified, deleted=r.deleted,
                             failed=r.failed, flows_flushed=r.flows_flushed, entries=r.entries, errors=r.errors)
        for sw in cfg.switches:
            if sw.name not in before:
                out.switches.add(switch=sw.name, started=True)
        return out

    async def ConfigureFlowtable(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        node = self.node(request.switch)
        doc = yaml.safe_load(config_to_yaml(self.daemon.cfg))
        sw = next(s for s in doc["switches"] if s["name"] == node.name)
        if request.HasField("max_flows"):
            sw["flowtable"]["max_flows"] = request.max_flows
        ports = {p["port"]: p for p in (*sw["vmis"], *sw["fabric_ports"])}
        for i, pc in enumerate(request.ports):
            p = ports.get(pc.port)
            if p is None:
                raise not_found(f"ports[{i}].port: switch {node.name} has no VMI or fabric port {pc.port} "
                                f"(ports: {', '.join(map(str, sorted(ports)))})")
            if pc.HasField("enable"):
                p["flowtable"] = pc.enable
            if pc.HasField("egress_port"):
                p["egress_port"] = pc.egress_port
        try:
            cfg = parse_config(yaml.safe_dump(doc, sort_keys=False), "ConfigureFlowtable", self.base_dir())
        except ConfigFileError as exc:
            raise invalid("; ".join(f"{p.path}: {p.message}" for p in exc.problems)) from None
        return await self.apply(cfg)

    async def ListPorts(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        nodes = [self.node(request.switch)] if request.switch else list(self.daemon.nodes.values())
        out = pb.ListPortsResponse()
        for node in nodes:
            sw = node.sw
            for v in sw.vmis:
                p = out.ports.add(switch=node.name, port=v.port, kind="vmi", name=v.name,
                                  vmi_id=node.vmi_ids.get(v.name, 0), vn=v.vn.name, vrf=v.vmi.vrf,
                                  addresses=[str(a) for a in v.addresses],
                                  exclude=[str(n) for n in v.vmi.exclude_list()],
                                  miss_policy=_MISS_NAMES.get(v.miss_policy, str(v.miss_policy)),
                                  flowtable=v.flowtable, mirror_new_flows=v.mirror_new_flows,
                                  egress_port=v.egress_port, mac=format_mac(v.mac))
                for r in v.vmi.effective_rules():
                    rp = p.rules.add(protocol=r.protocol, port=r.port, ignore_address=r.ignore_address.value)
                    if r.src_prefix_aggr is not None:
                        rp.src_subnet, rp.src_plen = str(r.src_prefix_aggr.subnet), r.src_prefix_aggr.plen
                    if r.dst_prefix_aggr is not None:
                        rp.dst_subnet, rp.dst_plen = str(r.dst_prefix_aggr.subnet), r.dst_prefix_aggr.plen
            for f in sw.fabric_ports:
                out.ports.add(switch=node.name, port=f.port, kind="fabric", vn=f.vn.name, vrf=f.vn.vrf,
                              miss_policy=_MISS_NAMES.get(f.miss_policy, str(f.miss_policy)), flowtable=f.flowtable,
                              mirror_new_flows=f.mirror_new_flows, egress_port=f.egress_port)
        return out

    async def GetStats(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        nodes = [self.node(request.switch)] if request.switch else list(self.daemon.nodes.values())
        out = pb.GetStatsResponse(records=self.daemon.records.published, watchers=len(self.hub.watchers))
        for node in nodes:
            fl, st = node.flows, node.flows.stats
            v4 = sum(1 for k in fl.index if k[0] == 4)
            s = out.switches.add(
                switch=node.name, state=node.session.state.value, flows=len(fl.index), max_flows=fl.settings.max_flows,
                setups=st.setups, recycles=st.recycles, expiries=st.expiries, digests=st.digests,
                digest_drops=st.digest_drops, duplicates=st.duplicates, capacity_drops=st.capacity_drops,
                insert_errors=st.insert_errors, flushed=st.flushed, deleted=st.deleted, lifetime0=st.lifetime0,
                adopted=st.adopted, hold_queued=fl.hold.queued, hold_released=fl.hold.released,
                hold_drops=fl.hold.dropped + fl.hold.dropped_by_verdict, hold_held=len(fl.hold),
                pending_updates=len(self.hub.pending.get(node.name, {})), vmis=len(node.vmi_ids),
                config_entries=node.last_apply.entries if node.last_apply else 0)
            s.tables.add(table=dp.FLOW_V4_TABLE, entries=v4, capacity=dp.FLOW_TABLE_SIZE)
            s.tables.add(table=dp.FLOW_V6_TABLE, entries=len(fl.index) - v4, capacity=dp.FLOW_TABLE_SIZE)
            for table, n in config_table_counts(node):
                s.tables.add(table=table, entries=n)
        return out


def config_table_counts(node: SwitchNode) -> list[tuple[str, int]]:
    """Configuration entries per table as the configuration compiles them (desired.py, pure)."""
    from p4fatflow import desired

    if not node.vmi_ids and node.sw.vmis:
        return []
    try:
        state = desired.desired_state(node.cfg, node.sw, node.vmi_ids)
    except Exception:  # a configuration not applied yet (ids unknown): no counts
        return []
    counts: dict[str, int] = {}
    for eid in state.entries:
        counts[eid[0]] = counts.get(eid[0], 0) + 1
    return sorted(counts.items())


def _failed(exc: ApiError, tag: int = 0) -> Any:
    return pb.UpdateFlowResult(status=pb.UpdateFlowResult.FAILED, code=exc.code.value[0], message=exc.message, tag=tag)


# ---- plumbing: errors, authentication, the server ---------------------------------------------------------


def _wrap(fn: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
    """ApiError -> its status; anything else -> INTERNAL (logged)."""
    if streaming:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in fn(request, context):
                    yield item
            except ApiError as exc:
                await context.abort(exc.code, exc.message)

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(request, context)
        except ApiError as exc:
            await context.abort(exc.code, exc.message)
        except ConnectionError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"switch connection: {exc}")
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            if type(exc).__name__ in ("WriteError", "AioRpcError"):
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"switch: {exc}")
            log.exception("API %s failed", getattr(fn, "__name__", fn))
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    return unary


class _Guarded(FatflowService):
    """The service with every method wrapped by :func:`_wrap`."""

    def __init__(self, daemon: Fatflowd, hub: FlowHub) -> None:
        super().__init__(daemon, hub)
        for name, method in pb.DESCRIPTOR.services_by_name["Fatflow"].methods_by_name.items():
            setattr(self, name, _wrap(getattr(super(), name), method.server_streaming))


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """``authorization: Bearer <token>`` on every call of the service (health/reflection stay open)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(f"/{SERVICE_NAME}/"):
            return handler
        got = dict(details.invocation_metadata or ()).get("authorization", "")
        if isinstance(got, bytes):
            got = got.decode(errors="replace")
        if hmac.compare_digest(got.encode(), self._expected):
            return handler

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or wrong bearer token (metadata 'authorization: Bearer <token>')")

        kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(deny, **kw)
        return grpc.unary_unary_rpc_method_handler(deny, **kw)


def read_token(path: Path) -> str:
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


class ApiServer:
    """The API of one :class:`Fatflowd` (``start()`` binds at once; ``await stop()``)."""

    def __init__(self, daemon: Fatflowd, settings: ApiSettings | None = None, *, pending_s: float = 10.0,
                 listen: str | None = None) -> None:
        self.daemon = daemon
        self.settings = settings if settings is not None else daemon.cfg.api
        self.listen = listen or self.settings.listen
        self.hub = FlowHub(daemon, pending_s=pending_s)
        self.service = _Guarded(daemon, self.hub)
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.health = health.aio.HealthServicer()
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self) -> bool:
        """Bind and start serving; False (logged) if the API cannot listen (fatflowd runs on)."""
        interceptors = []
        try:
            if self.settings.token_file is not None:
                interceptors.append(TokenInterceptor(read_token(self.settings.token_file)))
            server = grpc.aio.server(interceptors=interceptors, options=[
                ("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20)])
            pb_grpc.add_FatflowServicer_to_server(self.service, server)  # type: ignore[no-untyped-call]
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
            reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
            tls = self.settings.tls
            if tls is not None and tls.cert is not None and tls.key is not None:
                creds = grpc.ssl_server_credentials(
                    [(tls.key.read_bytes(), tls.cert.read_bytes())],
                    root_certificates=tls.ca.read_bytes() if tls.ca is not None else None,
                    require_client_auth=tls.ca is not None)
                self.port = server.add_secure_port(self.listen, creds)
            else:
                self.port = server.add_insecure_port(self.listen)
        except (OSError, RuntimeError, ValueError) as exc:
            log.error("API: cannot serve on %s: %s; fatflowd runs without its API", self.listen, exc)
            return False
        self.server = server
        self.hub.sync()
        self._tasks = [asyncio.ensure_future(self._run())]
        log.info("API: fatflow.v1 on %s%s%s", self.listen, " (TLS)" if tls else "",
                 ", bearer token required" if interceptors else "")
        return True

    async def _run(self) -> None:
        assert self.server is not None
        await self.server.start()
        for svc in ("", SERVICE_NAME):
            await self.health.set(svc, health_pb2.HealthCheckResponse.SERVING)
        while True:  # housekeeping: new switches' flow layers, pending updates past their time
            await asyncio.sleep(1.0)
            self.hub.sync()
            self.hub.expire_pending()

    async def stop(self, grace: float = 1.0) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
        self._tasks = []
        if self.server is not None:
            await self.health.enter_graceful_shutdown()
            await self.server.stop(grace)
            self.server = None
        self.hub.close()
