"""fatflowd's Prometheus endpoint (``api.metrics_listen``, loopback by default; null turns it off).

Nothing here runs per flow. :class:`FatflowCollector` is a prometheus-client custom collector that
reads the live counters of every switch (``FlowManager.stats``, its ``hold`` queues, the index size,
the session state) when it is scraped. The setup-latency histogram is fed from
``FlowStats.latencies`` (a bounded deque the learn loop appends digest->write seconds to) at scrape
time too: the collector remembers the last sample it took (by identity: every sample is its own
float object) and takes only those appended after it, so the hot path keeps doing one
``deque.append`` and nothing else. If more than the deque's length (100,000) were appended between
two scrapes, the older ones are not counted (``fatflow_flow_setup_latency_seconds_count`` then
trails ``fatflow_flow_setups_total``).

:class:`MetricsServer` serves ``GET /metrics`` (``/`` too) from the daemon's own event loop with
asyncio streams, not prometheus-client's threaded server: a scrape then reads the flow layer's
dicts and deques from the thread that changes them, never while they change. The text format is
prometheus-client's (``choose_encoder``: OpenMetrics when the scraper asks for it).

Metrics (labels): ``fatflow_switch_primary`` {switch} 1/0, ``fatflow_switch_state`` {switch, state}
(down/connecting/backup/primary, a state set); ``fatflow_active_flows`` {switch, table} (flow_v4,
flow_v6), ``fatflow_max_flows`` {switch}, ``fatflow_flow_table_capacity`` {switch, table}; counters
{switch}: ``fatflow_digests_total``, ``fatflow_digest_drops_total``, ``fatflow_digest_duplicates_total``,
``fatflow_digests_malformed_total``, ``fatflow_flow_setups_total``, ``fatflow_flow_expiries_total``,
``fatflow_flow_recycles_total``, ``fatflow_flows_flushed_total``, ``fatflow_flows_deleted_total``,
``fatflow_flow_insert_errors_total``, ``fatflow_capacity_drops_total``, ``fatflow_lifetime0_flows_total``,
``fatflow_flows_preinstalled_total``, ``fatflow_hold_queued_total``, ``fatflow_hold_dropped_total``,
``fatflow_hold_released_total``; gauges ``fatflow_flows_adopted``, ``fatflow_hold_packets``; the
histogram ``fatflow_flow_setup_latency_seconds`` {switch}; daemon-wide ``fatflow_flow_records_total``,
``fatflow_config_reloads_total``, and with IPFIX export ``fatflow_ipfix_records_total``,
``fatflow_ipfix_messages_total``, ``fatflow_ipfix_dropped_total``, ``fatflow_ipfix_send_errors_total``,
``fatflow_ipfix_queue``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from p4fatflow import dataplane as dp

__all__ = ["LATENCY_BUCKETS", "FatflowCollector", "LatencyHistogram", "MetricsServer", "make_registry"]

log = logging.getLogger("p4fatflow.metrics")

LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                      5.0, 10.0)
_STATES = ("down", "connecting", "backup", "primary")
_TABLES = (("flow_v4", 4), ("flow_v6", 6))


class _Daemon(Protocol):
    """What the collector reads of :class:`p4fatflow.daemon.Fatflowd` (duck-typed: no import cycle)."""

    @property
    def nodes(self) -> Mapping[str, Any]: ...
    @property
    def records(self) -> Any: ...
    @property
    def reloads(self) -> int: ...


class LatencyHistogram:
    """Cumulative bucket counts fed from a deque of samples that the hot path appends to."""

    __slots__ = ("_last", "_source", "count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket (not cumulative); the last is +Inf
        self.sum = 0.0
        self.count = 0
        self._source: deque[float] | None = None
        self._last: float | None = None

    def take(self, samples: deque[float]) -> int:
        """Count the samples appended to ``samples`` since the last call; returns how many."""
        if samples is not self._source:
            self._source, self._last = samples, None
        new: list[float] = []
        last = self._last
        for x in reversed(samples):
            if x is last:
                break
            new.append(x)
        if samples:
            self._last = samples[-1]
        for x in new:
            self.counts[bisect.bisect_left(LATENCY_BUCKETS, x)] += 1
            self.sum += x
        self.count += len(new)
        return len(new)

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        acc = 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            acc += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), acc))
        return out


class FatflowCollector(Collector):
    """Reads every switch's live counters at scrape time (see the module docstring)."""

    def __init__(self, daemon: _Daemon) -> None:
        self.daemon = daemon
        self._latency: dict[str, LatencyHistogram] = {}

    def _latencies(self, nodes: Mapping[str, Any]) -> dict[str, LatencyHistogram]:
        for gone in set(self._latency) - set(nodes):
            del self._latency[gone]
        for name, node in nodes.items():
            self._latency.setdefault(name, LatencyHistogram()).take(node.flows.stats.latencies)
        return self._latency

    def collect(self) -> Iterable[Metric]:
        return list(self._collect())

    def _collect(self) -> Iterator[Metric]:
        nodes = dict(self.daemon.nodes)
        primary = GaugeMetricFamily("fatflow_switch_primary", "1 if this controller is the switch's primary",
                                    labels=["switch"])
        state = StateSetMetricFamily("fatflow_switch_state", "P4Runtime session state", labels=["switch"])
        active = GaugeMetricFamily("fatflow_active_flows", "flows installed (the controller's index)",
                                   labels=["switch", "table"])
        capacity = GaugeMetricFamily("fatflow_flow_table_capacity", "entries a flow table holds",
                                     labels=["switch", "table"])
        max_flows = GaugeMetricFamily("fatflow_max_flows", "flows the switch may hold (flowtable.max_flows)",
                                      labels=["switch"])
        adopted = GaugeMetricFamily("fatflow_flows_adopted", "flows adopted from the switch when last becoming primary",
                                    labels=["switch"])
        held = GaugeMetricFamily("fatflow_hold_packets", "packets held now for pending flows", labels=["switch"])
        counters: dict[str, CounterMetricFamily] = {}

        def counter(name: str, doc: str) -> CounterMetricFamily:
            fam = counters.get(name)
            if fam is None:
                fam = counters[name] = CounterMetricFamily(name, doc, labels=["switch"])
            return fam

        latency = self._latencies(nodes)
        hist = HistogramMetricFamily("fatflow_flow_setup_latency_seconds",
                                     "seconds from a flow's digest arriving to its insert's Write completing",
                                     labels=["switch"])
        for name, node in sorted(nodes.items()):
            st = node.session.state.value
            primary.add_metric([name], 1.0 if st == "primary" else 0.0)
            state.add_metric([name], {s: s == st for s in _STATES})
            fl = node.flows
            v4 = sum(1 for k in fl.index if k[0] == 4)
            for table, fam_n in _TABLES:
                active.add_metric([name, table], v4 if fam_n == 4 else len(fl.index) - v4)
                capacity.add_metric([name, table], dp.FLOW_TABLE_SIZE)
            max_flows.add_metric([name], fl.settings.max_flows)
            s = fl.stats
            for metric, value, doc in (
                    ("fatflow_digests", s.digests, "digest entries received"),
                    ("fatflow_digest_drops", s.digest_drops, "digest entries dropped (backlog full)"),
                    ("fatflow_digest_duplicates", s.duplicates, "digest entries of flows installed or in flight"),
                    ("fatflow_digests_malformed", s.malformed, "digest entries that could not be decoded"),
                    ("fatflow_flow_setups", s.setups, "flows installed"),
                    ("fatflow_flow_expiries", s.expiries, "flows expired (idle)"),
                    ("fatflow_flow_recycles", s.recycles, "flows recycled at capacity"),
                    ("fatflow_flows_flushed", s.flushed, "flows flushed (configuration changes)"),
                    ("fatflow_flows_deleted", s.deleted, "flows deleted through the API"),
                    ("fatflow_flow_insert_errors", s.insert_errors, "flow inserts the switch refused"),
                    ("fatflow_capacity_drops", s.capacity_drops, "new flows not installed for lack of room"),
                    ("fatflow_lifetime0_flows", s.lifetime0, "lifetime-0 flows (records, never installed)"),
                    ("fatflow_flows_preinstalled", s.preinstalled, "flows installed through the API"),
                    ("fatflow_hold_queued", fl.hold.queued, "packets queued by the hold miss policy"),
                    ("fatflow_hold_dropped", fl.hold.dropped, "held packets dropped (limits, age, failed insert)"),
                    ("fatflow_hold_released", fl.hold.released, "held packets released by packet-out")):
                counter(metric, doc).add_metric([name], value)
            adopted.add_metric([name], s.adopted)
            held.add_metric([name], len(fl.hold))
            h = latency[name]
            hist.add_metric([name], h.buckets(), h.sum)
        yield from (primary, state, active, capacity, max_flows, adopted, held, *counters.values(), hist)
        yield CounterMetricFamily("fatflow_flow_records", "flow records published", value=self.daemon.records.published)
        yield CounterMetricFamily("fatflow_config_reloads", "configuration reloads applied", value=self.daemon.reloads)
        exporter = getattr(self.daemon, "exporter", None)
        if exporter is not None:
            es = exporter.stats
            yield CounterMetricFamily("fatflow_ipfix_records", "IPFIX data records sent", value=es.records)
            yield CounterMetricFamily("fatflow_ipfix_messages", "IPFIX messages sent", value=es.messages)
            yield CounterMetricFamily("fatflow_ipfix_dropped", "flow records not exported", value=es.dropped)
            yield CounterMetricFamily("fatflow_ipfix_send_errors", "IPFIX send errors", value=es.send_errors)
            yield GaugeMetricFamily("fatflow_ipfix_queue", "flow records waiting to be exported", value=exporter.queued)


def make_registry(daemon: _Daemon) -> CollectorRegistry:
    """A registry of its own (not the process-global one) with fatflowd's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FatflowCollector(daemon))
    return registry


class MetricsServer:
    """``GET /metrics`` over HTTP/1.1 (one response per connection), in the running event loop."""

    def __init__(self, registry: CollectorRegistry, listen: str) -> None:
        self.registry = registry
        self.listen = listen
        host, _, port = listen.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._server: asyncio.base_events.Server | None = None
        self.scrapes = 0

    @property
    def port(self) -> int | None:
        """The bound port (None until started)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> bool:
        """Bind and serve; on failure (address in use...) log it and return False: fatflowd runs on."""
        try:
            self._server = await asyncio.start_server(self._handle, self._host, self._port)
        except OSError as exc:
            log.error("metrics endpoint %s: cannot listen: %s", self.listen, exc.strerror or exc,
                      extra={"event": "metrics_error", "listen": self.listen})
            return False
        log.info("metrics endpoint http://%s/metrics", self.listen, extra={"event": "metrics_start", "listen": self.listen})
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split()
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            if len(parts) != 3:
                status, ctype, body = "400 Bad Request", "text/plain", b"bad request\n"
            elif parts[0] not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif parts[1].split("?", 1)[0] not in ("/metrics", "/"):
                status, ctype, body = "404 Not Found", "text/plain", b"see /metrics\n"
            else:
                encoder, ctype = choose_encoder(headers.get("accept", ""))
                body = encoder(self.registry)
                status = "200 OK"
                self.scrapes += 1
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode("latin-1"))
            if parts[:1] != ["HEAD"]:
                writer.write(body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics endpoint: scrape failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
