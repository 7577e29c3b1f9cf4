"""One switch under control: its session, its configuration (applied as a diff) and its flows.

A :class:`SwitchNode` is the session's listener. When its session becomes primary (at start, on
reconnect, after a switch restart, or when a backup controller takes over) it reconciles: reads the
configuration tables, recovers the VMI ids, writes only the difference to the desired state
(desired.py), makes sure the analyzer clone session and the digest configuration are right, then
hands the switch to the :class:`FlowManager`, which adopts the flows the switch already holds.
When it stops being primary, the flow layer stops; nothing is written by a backup.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from finsy.proto import p4r

from p4fatflow import dataplane as dp
from p4fatflow import desired as desired
from p4fatflow import p4rt
from p4fatflow.flowcodec import FlowCodec
from p4fatflow.flows import FlowManager, FlowSettings
from p4fatflow.hold import KeyResolver, PortView
from p4fatflow.key import ExcludeList, compile_rules
from p4fatflow.policy import Policy, PortDefaults, make_policy
from p4fatflow.profile import PipelineProfile
from p4fatflow.records import RecordBus
from p4fatflow.session import OK, SessionOptions, SwitchSession
from p4fatflow.settings import FatflowConfig, SwitchConfig

__all__ = ["ApplyReport", "SwitchNode", "session_options"]

log = logging.getLogger("p4fatflow.node")


@dataclass(slots=True)
class ApplyReport:
    switch: str
    inserted: int = 0
    modified: int = 0
    deleted: int = 0
    failed: int = 0
    flows_flushed: int = 0
    entries: int = 0  # configuration entries the switch holds now
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"switch {self.switch}: {self.inserted} inserted, {self.modified} modified, {self.deleted} deleted"
                f", {self.failed} failed; {self.entries} configuration entries; {self.flows_flushed} flows flushed")


def session_options(sw: SwitchConfig) -> SessionOptions:
    creds = None
    if sw.tls is not None:
        from finsy.grpcutil import GRPCCredentialsTLS

        creds = GRPCCredentialsTLS(cacert=sw.tls.ca, cert=sw.tls.cert, private_key=sw.tls.key,
                                   target_name_override=sw.tls.server_name or "")
    return SessionOptions(name=sw.name, address=sw.address, device_id=sw.device_id, election_id=sw.election_id,
                          p4info=sw.p4info, device_config=sw.device_config, credentials=creds)


def _flow_settings(sw: SwitchConfig) -> FlowSettings:
    ft = sw.flowtable
    return FlowSettings(max_flows=ft.max_flows, hold_per_flow=ft.hold.per_flow, hold_total=ft.hold.total,
                        backlog_limit=ft.digest.backlog)


def _fingerprint(obj: object) -> int:
    return zlib.crc32(repr(obj).encode()) or 1


class SwitchNode:
    """Session + configuration + flows of one switch (see the module docstring)."""

    def __init__(self, cfg: FatflowConfig, sw: SwitchConfig, *, records: RecordBus | None = None,
                 policy: Policy | None = None) -> None:
        self.cfg = cfg
        self.sw = sw
        self.records = records or RecordBus()
        self.session = SwitchSession(session_options(sw), self)
        self.profile = PipelineProfile.v1model(self.session.schema, cpu_port=sw.cpu_port)
        self.codec = FlowCodec(self.profile)
        self.flows = FlowManager(sw.name, self.codec, _flow_settings(sw),
                                 policy=policy or make_policy(sw.flowtable.policy, sw.flowtable.policy_options),
                                 records=self.records)
        self.vmi_ids: Mapping[str, int] = {}
        self.last_apply: ApplyReport | None = None
        self.ready = asyncio.Event()  # set once primary and reconciled
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.sw.name

    # ----------------------------------------------------------------------- lifecycle
    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.session.run(), name=f"session-{self.name}")
        return self._task

    async def stop(self) -> None:
        await self.flows.stop()
        await self.session.stop()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:
                pass

    # ----------------------------------------------------------------------- SessionListener
    async def session_primary(self, session: SwitchSession, pipeline_pushed: bool) -> None:
        self.flows.accept(session)
        async with self._lock:
            report = await self._apply(self.cfg, self.sw, flush=False)
            log.info("%s", report)
            await self.flows.start(session)
            self.ready.set()

    async def session_not_primary(self, session: SwitchSession) -> None:
        self.ready.clear()
        await self.flows.stop()

    def digest_list(self, session: SwitchSession, msg: p4r.DigestList) -> None:
        self.flows.digest_list(msg)

    def idle_timeouts(self, session: SwitchSession, msg: p4r.IdleTimeoutNotification) -> None:
        self.flows.idle_timeouts(msg)

    def packet_in(self, session: SwitchSession, msg: p4r.PacketIn) -> None:
        self.flows.packet_in(msg)

    # ----------------------------------------------------------------------- configuration
    async def apply(self, cfg: FatflowConfig) -> ApplyReport:
        """Apply a new configuration at run time, as a diff; flush flows whose keys may change."""
        sw = cfg.switch(self.name)
        async with self._lock:
            self.cfg, self.sw = cfg, sw
            self.flows.settings = _flow_settings(sw)
            self.flows.policy = make_policy(sw.flowtable.policy, sw.flowtable.policy_options)
            self.flows.hold.per_flow, self.flows.hold.total = sw.flowtable.hold.per_flow, sw.flowtable.hold.total
            if not self.session.is_primary:
                return ApplyReport(self.name, errors=["not primary: applied when it becomes primary"])
            return await self._apply(cfg, sw, flush=True)

    async def _read_config_entries(self) -> dict[desired.EntryId, dp.TableWrite]:
        schema = self.session.schema
        entities = [p4r.Entity(table_entry=p4r.TableEntry(table_id=t)) for t in self.profile.config_table_ids.values()]
        actual: dict[desired.EntryId, dp.TableWrite] = {}
        async for e in self.session.read(entities):
            w = p4rt.decode_table_entry(schema, e.table_entry)
            actual[w.entry_id] = w
        return actual

    async def _apply(self, cfg: FatflowConfig, sw: SwitchConfig, *, flush: bool) -> ApplyReport:
        report = ApplyReport(self.name)
        schema = self.session.schema
        actual = await self._read_config_entries()
        known = desired.vmi_ids_from_port_entries(actual.values())
        state = desired.desired_state(cfg, sw, known)
        self.vmi_ids = dict(state.vmi_ids)
        d = desired.diff_entries(state.entries, actual)
        # The digest and the clone session before the entries: once the port entries exist, every
        # miss must already be reported (a restarted switch otherwise drops the digests of the
        # packets that arrive between the entries and the digest entry: their flows are not learned
        # until their next packet) and every mirror entry must find its session.
        await self._apply_clone_sessions(state.clone_sessions)
        await self._apply_digest(state.digest)
        for kind, writes, utype in (("insert", d.insert, p4r.Update.INSERT), ("modify", d.modify, p4r.Update.MODIFY),
                                    ("delete", d.delete, p4r.Update.DELETE)):
            if not writes:
                continue
            updates = [p4r.Update(type=utype, entity=p4r.Entity(table_entry=p4rt.encode_table_entry(schema, w)))
                       for w in writes]
            codes = await self.session.write(updates)
            ok = sum(1 for c in codes if c == OK)
            setattr(report, {"insert": "inserted", "modify": "modified", "delete": "deleted"}[kind], ok)
            for w, c in zip(writes, codes, strict=True):
                if c != OK:
                    report.failed += 1
                    report.errors.append(f"{kind} {w.table} {dict(w.match)}: code {c}")
        report.entries = len(state.entries) - report.failed
        self._configure_flows(cfg, sw, state)
        if flush:
            report.flows_flushed = await self.flows.flush_stale()
        self.last_apply = report
        return report

    async def _apply_clone_sessions(self, sessions: Mapping[int, tuple[int, ...]]) -> None:
        sid = self.profile.clone_session_id
        want = sessions.get(sid)
        probe = p4r.Entity()
        probe.packet_replication_engine_entry.clone_session_entry.session_id = sid
        have = None
        try:
            got = await self.session.read_all([probe])
            for e in got:
                cs = e.packet_replication_engine_entry.clone_session_entry
                if cs.session_id == sid:
                    have = tuple(r.egress_port for r in cs.replicas)
        except Exception:
            have = None
        if have == want:
            return
        entity = p4r.Entity()
        cs = entity.packet_replication_engine_entry.clone_session_entry
        cs.session_id = sid
        if want is None:
            await self.session.write([p4r.Update(type=p4r.Update.DELETE, entity=entity)])
            return
        for i, port in enumerate(want):
            r = cs.replicas.add()
            r.egress_port = port
            r.instance = i + 1
        utype = p4r.Update.MODIFY if have is not None else p4r.Update.INSERT
        await self.session.write([p4r.Update(type=utype, entity=entity)])

    async def _apply_digest(self, settings: object) -> None:
        entity = p4r.Entity()
        de = entity.digest_entry
        de.digest_id = self.profile.digest_id
        de.config.max_list_size = settings.max_list_size  # type: ignore[attr-defined]
        de.config.max_timeout_ns = settings.max_timeout_ns  # type: ignore[attr-defined]
        de.config.ack_timeout_ns = settings.ack_timeout_ns  # type: ignore[attr-defined]
        codes = await self.session.write([p4r.Update(type=p4r.Update.MODIFY, entity=entity)])
        if codes[0] != OK:
            await self.session.write([p4r.Update(type=p4r.Update.INSERT, entity=entity)])

    def _configure_flows(self, cfg: FatflowConfig, sw: SwitchConfig, state: desired.DesiredState) -> None:
        ft = sw.flowtable
        lifetimes = dict(ft.lifetimes)
        # Flows learned on a port that mirrors new flows keep being mirrored until an application
        # offloads them (seed 000's port-mirroring test); without an analyzer nothing is mirrored.
        mirror = ft.analyzer_port is not None
        defaults: dict[int, PortDefaults] = {}
        views: dict[int, PortView] = {}
        for vp in sw.vmis:
            vmi_id = state.vmi_ids[vp.vmi.name]
            defaults[vp.vmi.port] = PortDefaults(egress_port=vp.egress_port, mirror=mirror and vp.mirror_new_flows, lifetimes=lifetimes,
                                                 default_lifetime=ft.default_lifetime)
            views[vp.vmi.port] = PortView(vp.vmi.port, vp.vmi.vrf, vmi_id, compile_rules(vp.vmi.effective_rules()),
                                          ExcludeList(vp.vmi.exclude_list()))
        for fp in sw.fabric_ports:
            defaults[fp.port] = PortDefaults(egress_port=fp.egress_port, mirror=mirror and fp.mirror_new_flows, lifetimes=lifetimes,
                                             default_lifetime=ft.default_lifetime)
            views[fp.port] = PortView(fp.port, fp.vn.vrf)
        self.flows.port_defaults = defaults
        self.flows.fallback_defaults = PortDefaults(lifetimes=lifetimes, default_lifetime=ft.default_lifetime)
        self.flows.fingerprints = {vid: _fingerprint(fp) for vid, fp in state.vmi_fingerprints.items()}
        self.flows.resolver = KeyResolver(views)
