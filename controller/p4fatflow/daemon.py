"""``fatflowd``: the flowtable controller as a process.

    fatflowd CONFIG.yaml [--log-level info] [--log-format text|json] [--check]

Loads the configuration (a bad file is refused with every problem listed, exit status 2), starts
one :class:`SwitchNode` per switch (each connects, arbitrates, pushes the pipeline if needed,
applies the configuration as a diff and learns flows), and runs until SIGTERM/SIGINT. SIGHUP
reloads the file: a valid new file is applied to every switch as a diff; an invalid one is
reported and changes nothing. On SIGTERM the in-flight writes are completed and the process
exits; installed flows stay on the switches (they are the state) and are adopted on restart.

Observability (kept apart below): the Prometheus endpoint (``api.metrics_listen``, metrics.py), IPFIX
export of flow records (``export.ipfix``, export/ipfix.py) and JSON-lines logs (logs.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from p4fatflow.export.ipfix import IpfixExporter
from p4fatflow.logs import FORMATS, setup_logging
from p4fatflow.metrics import MetricsServer, make_registry
from p4fatflow.node import ApplyReport, SwitchNode
from p4fatflow.records import RecordBus
from p4fatflow.settings import ConfigFileError, FatflowConfig, load_config

__all__ = ["Fatflowd", "main"]

log = logging.getLogger("p4fatflow.daemon")


class Fatflowd:
    """All switches of one configuration, and its reloads."""

    def __init__(self, cfg: FatflowConfig, config_path: Path | None = None) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.records = RecordBus()
        self.nodes: dict[str, SwitchNode] = {sw.name: SwitchNode(cfg, sw, records=self.records) for sw in cfg.switches}
        self._stop = asyncio.Event()
        self.reloads = 0
        # The gRPC API (p4fatflow.api): bound and started in start(), stopped in stop().
        from p4fatflow.api.server import ApiServer

        self.api = ApiServer(self, cfg.api)
        # ---- observability: metrics endpoint, IPFIX export (started in start(), stopped in stop())
        self.metrics = MetricsServer(make_registry(self), cfg.api.metrics_listen) if cfg.api.metrics_listen else None
        self.exporter = self._make_exporter(cfg)
        self._export_settings = cfg.export
        self._metrics_task: asyncio.Task[bool] | None = None

    def _make_exporter(self, cfg: FatflowConfig) -> IpfixExporter | None:
        ipfix = cfg.export.ipfix
        if ipfix is None:
            return None
        return IpfixExporter(ipfix.collector, self.records, observation_domain=ipfix.observation_domain,
                             template_refresh_s=ipfix.template_refresh_s, periodic_s=ipfix.periodic_s,
                             flows=lambda: {name: node.flows for name, node in self.nodes.items()})

    def start(self) -> None:
        for node in self.nodes.values():
            node.start()
        self.api.start()
        if self.metrics is not None:
            self._metrics_task = asyncio.create_task(self.metrics.start(), name="metrics")
        if self.exporter is not None:
            self.exporter.start()

    async def stop(self) -> None:
        await self.api.stop()
        for node in self.nodes.values():
            await node.flows.drain(timeout=5.0)
        await asyncio.gather(*(node.stop() for node in self.nodes.values()))
        # ---- observability: the records of the last expiries go out before the exporter closes
        if self.exporter is not None:
            await self.exporter.stop()
        if self.metrics is not None:
            await self.metrics.stop()

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def apply(self, cfg: FatflowConfig) -> list[ApplyReport]:
        """Apply a validated configuration to every switch as a diff. Switches added or removed in
        the new file are started or stopped."""
        new = {sw.name for sw in cfg.switches}
        reports: list[ApplyReport] = []
        for name in list(self.nodes):
            if name not in new:
                await self.nodes.pop(name).stop()
        self.cfg = cfg
        for sw in cfg.switches:
            node = self.nodes.get(sw.name)
            if node is None:
                node = self.nodes[sw.name] = SwitchNode(cfg, sw, records=self.records)
                node.start()
                continue
            reports.append(await node.apply(cfg))
        # ---- observability: a changed export section restarts the exporter
        if cfg.export != self._export_settings:
            if self.exporter is not None:
                await self.exporter.stop()
            self.exporter, self._export_settings = self._make_exporter(cfg), cfg.export
            if self.exporter is not None:
                self.exporter.start()
        return reports

    async def reload(self) -> list[ApplyReport] | None:
        """Re-read the configuration file and apply it; None if it is invalid (nothing changes)."""
        if self.config_path is None:
            return None
        try:
            cfg = load_config(self.config_path)
        except ConfigFileError as exc:
            log.error("reload refused, the running configuration is unchanged:\n%s", exc,
                      extra={"event": "reload_refused", "problems": [str(p) for p in exc.problems]})
            return None
        reports = await self.apply(cfg)
        self.reloads += 1
        for r in reports:
            log.info("reload: %s", r, extra={"event": "reload"})
        return reports


async def _serve(args: argparse.Namespace, cfg: FatflowConfig) -> int:
    daemon = Fatflowd(cfg, Path(args.config))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, daemon.request_stop)
    loop.add_signal_handler(signal.SIGINT, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(daemon.reload()))
    daemon.start()
    log.info("fatflowd: %d switch(es) from %s", len(daemon.nodes), args.config,
             extra={"event": "start", "switches": len(daemon.nodes), "config": args.config})
    await daemon.wait_stopped()
    log.info("fatflowd: stopping", extra={"event": "stopping"})
    await daemon.stop()
    for name, node in daemon.nodes.items():
        log.info("switch %s: stopped, %d flows left installed", name, len(node.flows.index),
                 extra={"event": "stopped", "switch": name, "flows": len(node.flows.index)})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fatflowd", description="The p4-fatflow flowtable controller.")
    ap.add_argument("config", help="the YAML configuration file (docs/configuration.md)")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    ap.add_argument("--log-format", default="text", choices=FORMATS, help="text lines or JSON lines (logs.py)")
    ap.add_argument("--check", action="store_true", help="validate the configuration and exit")
    args = ap.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        cfg = load_config(args.config)
    except ConfigFileError as exc:
        print(f"fatflowd: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fatflowd: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: valid ({len(cfg.switches)} switch(es), {len(cfg.vns)} VN(s))")
        return 0
    return asyncio.run(_serve(args, cfg))


if __name__ == "__main__":
    sys.exit(main())
