"""The metrics collector on the flow layer's real counter objects (FlowStats, HoldQueues, FlowIndex),
the latency histogram's draining, the in-loop HTTP endpoint, and the JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from types import SimpleNamespace
from typing import Any

from p4fatflow.flowindex import FlowIndex
from p4fatflow.flows import FlowSettings, FlowStats
from p4fatflow.hold import HoldQueues
from p4fatflow.logs import setup_logging
from p4fatflow.metrics import LATENCY_BUCKETS, LatencyHistogram, MetricsServer, make_registry
from p4fatflow.node import ApplyReport
from p4fatflow.records import RecordBus
from p4fatflow.session import SessionState
from prometheus_client.parser import text_string_to_metric_families


def _node(state: SessionState) -> Any:
    flows = SimpleNamespace(stats=FlowStats(), hold=HoldQueues(), index=FlowIndex(), settings=FlowSettings(max_flows=99))
    return SimpleNamespace(session=SimpleNamespace(state=state), flows=flows)


def _samples(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.exposition import generate_latest

    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_collector_reads_live_counters_at_scrape_time() -> None:
    a, b = _node(SessionState.PRIMARY), _node(SessionState.BACKUP)
    daemon = SimpleNamespace(nodes={"a": a, "b": b}, records=RecordBus(), reloads=2, exporter=None)
    reg = make_registry(daemon)
    for i in range(3):
        a.flows.index.add(bytes([4, i]), 100)
    a.flows.index.add(bytes([6, 0]), 100)
    a.flows.stats.setups, a.flows.stats.recycles, a.flows.stats.digest_drops = 4, 2, 7
    a.flows.hold.add(b"k", b"payload", 1)
    m = _samples(reg)
    assert m[("fatflow_active_flows", (("switch", "a"), ("table", "flow_v4")))] == 3
    assert m[("fatflow_active_flows", (("switch", "a"), ("table", "flow_v6")))] == 1
    assert m[("fatflow_flow_setups_total", (("switch", "a"),))] == 4
    assert m[("fatflow_flow_recycles_total", (("switch", "a"),))] == 2
    assert m[("fatflow_digest_drops_total", (("switch", "a"),))] == 7
    assert m[("fatflow_hold_queued_total", (("switch", "a"),))] == 1 and m[("fatflow_hold_packets", (("switch", "a"),))] == 1
    assert m[("fatflow_switch_primary", (("switch", "a"),))] == 1 and m[("fatflow_switch_primary", (("switch", "b"),))] == 0
    assert m[("fatflow_switch_state", (("fatflow_switch_state", "backup"), ("switch", "b")))] == 1
    assert m[("fatflow_max_flows", (("switch", "b"),))] == 99
    assert m[("fatflow_config_reloads_total", ())] == 2
    a.flows.stats.setups = 5  # live: the next scrape sees it, nothing was registered per flow
    assert _samples(reg)[("fatflow_flow_setups_total", (("switch", "a"),))] == 5
    del daemon.nodes["b"]  # a switch removed by a reload disappears from the output
    assert not any(dict(k[1]).get("switch") == "b" for k in _samples(reg))


def test_latency_histogram_takes_each_sample_once_and_survives_wraparound() -> None:
    h = LatencyHistogram()
    dq: Any = __import__("collections").deque(maxlen=4)
    assert h.take(dq) == 0
    dq.extend([0.0001, 0.003])
    assert h.take(dq) == 2 and h.take(dq) == 0
    dq.extend([0.2, 20.0])
    assert h.take(dq) == 2 and h.count == 4
    dq.extend([0.001 * i for i in range(1, 7)])  # 6 more into a deque of 4: 2 lost, 4 counted
    assert h.take(dq) == 4 and h.count == 8
    buckets = dict(h.buckets())
    assert buckets["+Inf"] == 8 and buckets[repr(LATENCY_BUCKETS[0])] == 1  # 0.0001 <= 0.0005
    assert buckets["0.25"] == 7 and abs(h.sum - (0.0001 + 0.003 + 0.2 + 20.0 + 0.001 * (3 + 4 + 5 + 6))) < 1e-9
    assert h.take(__import__("collections").deque([1.0])) == 1  # a new deque (a new FlowManager): counted on


async def test_endpoint_serves_metrics_and_404s_from_the_event_loop() -> None:
    daemon = SimpleNamespace(nodes={"a": _node(SessionState.PRIMARY)}, records=RecordBus(), reloads=0)
    server = MetricsServer(make_registry(daemon), "127.0.0.1:0")
    assert await server.start()
    try:
        async def get(path: str, accept: str = "") -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read()
            writer.close()
            return data
        ok = await get("/metrics")
        assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and b"fatflow_flow_setups_total{switch=\"a\"} 0.0" in ok
        om = await get("/metrics", "application/openmetrics-text; version=1.0.0")
        assert b"application/openmetrics-text" in om and om.rstrip().endswith(b"# EOF")
        assert (await get("/x")).startswith(b"HTTP/1.1 404")
        assert server.scrapes == 2
    finally:
        await server.stop()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:  # the address in use: logged and refused, fatflowd runs on
        busy = MetricsServer(make_registry(daemon), f"127.0.0.1:{taken.getsockname()[1]}")
        assert await busy.start() is False and busy.port is None
        await busy.stop()
    finally:
        taken.close()


def test_json_logs_carry_switch_event_and_counts_and_hide_secrets() -> None:
    buf = io.StringIO()
    handler = setup_logging("info", "json", stream=buf)
    try:
        logging.getLogger("p4fatflow.session").info("switch %s: primary (election id %d)", "sw1", 10)
        report = ApplyReport("sw1", inserted=3, modified=1, entries=30)
        logging.getLogger("p4fatflow.node").info("%s", report)
        logging.getLogger("p4fatflow.daemon").info("reload: %s", report, extra={"event": "reload", "token": "s3cret"})
        lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    finally:
        logging.getLogger().removeHandler(handler)
    assert (lines[0]["event"], lines[0]["switch"], lines[0]["level"], lines[0]["logger"]) == (
        "primary", "sw1", "INFO", "p4fatflow.session")
    assert {k: lines[1][k] for k in ("event", "switch", "inserted", "modified", "deleted", "entries")} == {
        "event": "apply", "switch": "sw1", "inserted": 3, "modified": 1, "deleted": 0, "entries": 30}
    assert lines[2]["event"] == "reload" and lines[2]["inserted"] == 3 and lines[2]["token"] == "***"
    assert "s3cret" not in buf.getvalue()
