"""fatflowd's Prometheus endpoint, scraped from a real fatflowd process driving a real target with
real traffic: active flows per table, setups, expiries, recycles, the setup-latency histogram, the
switch's primary state; parsed with prometheus-client's own text parser."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

from ffd import config_dict, eventually, fatflowd_process, frame, send_paced, write_config
from prometheus_client.parser import text_string_to_metric_families
from targets import SwitchProcess

from softswitch.launch import PipelineBuild, free_port

VM1, FABRIC = 1, 3


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value}; fails on anything but 200 and the text format."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sw(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"switch": "sw1", **labels}.items()))


async def test_scrape_a_running_fatflowd_with_real_traffic(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    port = free_port()
    cfg = config_dict([("sw1", switch, 10)], ff_build, rules=[],
                      flowtable={"max_flows": 20, "lifetime": {"default": 60, "tcp": 1}})
    cfg["api"] = {"listen": f"127.0.0.1:{free_port()}", "metrics_listen": f"127.0.0.1:{port}"}
    write_config(tmp_path / "ff.yaml", cfg)
    url = f"http://127.0.0.1:{port}/metrics"
    log = tmp_path / "fatflowd.log"
    with fatflowd_process(tmp_path / "ff.yaml", log, "--log-format", "json") as proc:
        def primary() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return scrape(url).get(("fatflow_switch_primary", sw())) == 1.0
            except OSError:
                return False
        await eventually(primary, 30, "the endpoint up and sw1 primary")
        # primary comes first, then the configuration is applied: traffic waits for that (event apply)
        await eventually(lambda: '"event": "apply"' in log.read_text(), 30, "sw1 reconciled")
        m = scrape(url)
        assert m[("fatflow_switch_state", sw(fatflow_switch_state="primary"))] == 1.0
        assert m[("fatflow_switch_state", sw(fatflow_switch_state="backup"))] == 0.0
        assert m[("fatflow_active_flows", sw(table="flow_v4"))] == 0 and m[("fatflow_max_flows", sw())] == 20

        # 16 UDP (60 s) + 4 IPv6 UDP flows: 20 installed; then 5 TCP flows (1 s) at capacity: 5 recycles.
        udp4 = [frame("10.0.0.3", f"8.8.8.{i + 1}", 17, 1000 + i, 53) for i in range(16)]
        udp6 = [frame("2001:db8::3", f"2001:4860::{i + 1:x}", 17, 2000 + i, 53) for i in range(4)]
        assert await send_paced(switch, VM1, udp4 + udp6) == 20
        await eventually(lambda: scrape(url)[("fatflow_flow_setups_total", sw())] == 20, 15, "20 setups")
        m = scrape(url)
        assert (m[("fatflow_active_flows", sw(table="flow_v4"))], m[("fatflow_active_flows", sw(table="flow_v6"))]) \
            == (16, 4)
        assert m[("fatflow_digests_total", sw())] >= 20
        assert m[("fatflow_flow_setup_latency_seconds_count", sw())] == 20
        assert m[("fatflow_flow_setup_latency_seconds_bucket", sw(le="+Inf"))] == 20
        assert 0 < m[("fatflow_flow_setup_latency_seconds_sum", sw())] < 20 * 5
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in m.items()
                         if k[0] == "fatflow_flow_setup_latency_seconds_bucket")
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative

        tcp = [frame("10.0.0.3", f"9.9.9.{i + 1}", 6, 3000 + i, 443) for i in range(5)]
        for f in tcp:
            assert await send_paced(switch, VM1, [f], FABRIC) == 1
            await asyncio.sleep(0.05)
        await eventually(lambda: scrape(url)[("fatflow_flow_recycles_total", sw())] == 5, 15, "5 recycles")
        # TCP flows live 1 s (and are the first to be recycled): the one still installed expires
        await eventually(lambda: scrape(url)[("fatflow_flow_expiries_total", sw())] >= 1, 20, "an expiry")
        await asyncio.sleep(1.5)
        m = scrape(url)
        expiries = m[("fatflow_flow_expiries_total", sw())]
        assert m[("fatflow_flow_setups_total", sw())] == 25
        assert m[("fatflow_flow_setup_latency_seconds_count", sw())] == 25  # each sample counted once
        active = m[("fatflow_active_flows", sw(table="flow_v4"))] + m[("fatflow_active_flows", sw(table="flow_v6"))]
        assert active == 20 - expiries
        assert m[("fatflow_flow_records_total", ())] == 5 + expiries  # recycled + idle
        for name in ("fatflow_digest_drops_total", "fatflow_hold_dropped_total", "fatflow_flows_flushed_total",
                     "fatflow_flow_insert_errors_total"):
            assert m[(name, sw())] == 0, name
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing", timeout=5).close()
            raise AssertionError("expected 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
