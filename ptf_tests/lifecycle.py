"""The flow lifecycle driven by the real fatflowd (issue 9): learn, expire, recycle, update.

Each test writes a fatflowd configuration for the switch under test (the test params' grpcaddr,
device_id, cpu_port, p4info and config; VMI ``vm1`` on port 1, ``vm2`` on port 2, the fabric on
port 3, the analyzer on port 4, as the runner wires them to the PTF interfaces; the API on a free
loopback port; metrics off) and starts ``python -m p4fatflow.daemon`` as a subprocess. fatflowd
arbitrates with a higher election id than the base's client, so it becomes the primary and the
base's client a backup that only reads: one primary writes at a time. The test waits until
fatflowd is primary and has applied the configuration (its GetStats, and the switch's tables read
back), then sends frames through the dataplane and watches the switch (P4Runtime reads) and
fatflowd's API (ListFlows, GetFlow, WatchFlows, GetStats).

The cleanup stops fatflowd with SIGTERM (it must exit 0), waits until the base's client is the
primary again (the switch promotes it), deletes what fatflowd wrote (flows, configuration entries,
clone session, the digest entry) so that the base's leftover check passes, and removes the
configuration's directory. fatflowd's log goes to the test's PTF log.

Only standard P4Runtime and the public API are used; waits are polls with generous timeouts
(BMv2 sweeps idle timeouts about once a second), and no test relies on the order of a read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import finsy
import grpc
import yaml
from fatflow_base import (
    ANALYZER_PORT,
    FABRIC_PORT,
    NEXT_HOP_MAC,
    REPO,
    ROUTER_MAC,
    VMI2_PORT,
    VMI_MAC,
    VMI_PORT,
    VRF,
    FatFlowTest,
    frame,
    packet_fields,
    reference_key,
    routed,
)
from p4fatflow import dataplane as dp
from p4fatflow import desired, p4rt
from p4fatflow.api.client import FatflowClient, FatflowError, watch_request
from p4fatflow.api.pb import pb
from p4fatflow.key import Direction, FlowKey
from p4fatflow.settings import load_config
from p4runtime_base import describe, test_param
from scapy.packet import Packet

VM2_MAC = "02:00:00:00:01:02"
#: fatflowd's election id: above the base client's (finsy starts at 10), so fatflowd is primary
ELECTION_ID = 1000
READY_TIMEOUT = 60.0  # fatflowd's start: imports, connect, arbitration, configuration
LEARN_TIMEOUT = 10.0

# The VN's rules: three fat-flow shapes (DNS per /28 of subscribers, DNS6 per /64, HTTPS per /26
# towards one /24); TCP to other ports has no rule and gives normal (5-tuple) flows.
RULES: list[dict[str, Any]] = [
    {"protocol": "udp", "port": 53, "ignore_address": "dst", "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}},
    {"protocol": "udp", "port": 53, "ignore_address": "dst",
     "src_prefix_aggr": {"subnet": "2001:db8::/32", "plen": 64}},
    {"protocol": "tcp", "port": 443, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 26},
     "dst_prefix_aggr": {"subnet": "203.0.113.0/24", "plen": 24}},
]
# The addresses of vm1 (the sources of the tests' frames: the API addresses flows by the VMI's
# own addresses) and of vm2.
VM1_ADDRESSES = ["10.0.1.3", "10.0.1.5", "10.0.1.20", "10.0.1.70", "2001:db8:0:1::5", "2001:db8:0:1::6"]
VM2_ADDRESSES = ["10.0.2.4"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watcher:
    """A WatchFlows stream read on a thread; ``events`` collects every event it delivered."""

    def __init__(self, client: FatflowClient, **kw: Any) -> None:
        self.events: list[Any] = []
        self.skipped = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._call = client.stub.WatchFlows(watch_request(**kw), metadata=client.metadata)
        self._thread = threading.Thread(target=self._run, name="watchflows", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for batch in self._call:
                with self._lock:
                    self.events.extend(batch.events)
                    self.skipped += batch.skipped
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.error = exc
        except BaseException as exc:  # reported by the test
            self.error = exc

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.events)

    def expired(self, reason: str | None = None) -> list[Any]:
        return [e for e in self.snapshot()
                if e.kind == pb.FlowEvent.EXPIRED and (reason is None or e.reason == reason)]

    def stop(self) -> None:
        self._call.cancel()
        self._thread.join(5)


class FatflowdTest(FatFlowTest):
    """The real fatflowd drives the switch; the base's client watches (backup, reads only).

    ``flowtable`` overrides keys of the configuration's ``flowtable:`` section."""

    digest_names = ()  # type: ignore[assignment]  # fatflowd configures the flow digest, not the base
    flowtable: dict[str, Any] = {}

    def setUp(self) -> None:
        super().setUp()
        self.work = Path(tempfile.mkdtemp(prefix="fatflow-ptf-lifecycle-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.api: FatflowClient | None = None
        self.watchers: list[Watcher] = []
        # Runs before the base's own cleanup (cleanups are LIFO), also when setUp fails below.
        self.addCleanup(self._stop_fatflowd)
        self.api_address = f"127.0.0.1:{free_port()}"
        self.config_path = self.work / "fatflowd.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config_dict(), sort_keys=False))
        self.cfg = load_config(self.config_path)
        self.sw_cfg = self.cfg.switches[0]
        self.vm1 = self.sw_cfg.vmis[0].vmi
        self.log_path = self.work / "fatflowd.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "p4fatflow.daemon", str(self.config_path), "--log-level", "info"],
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                cwd=str(REPO), start_new_session=True)
        self.api = FatflowClient(self.api_address, timeout=10)
        self._wait_ready()

    # -- configuration ----------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        ft: dict[str, Any] = {"max_flows": 1000, "lifetime": {"default": 60}, "analyzer_port": ANALYZER_PORT,
                              "digest": {"max_list_size": 16, "max_timeout_ms": 2, "ack_timeout_ms": 500}}
        ft.update(self.flowtable)
        return {
            "version": 1,
            "api": {"listen": self.api_address, "metrics_listen": None},
            "flowtable": ft,
            "vns": [{"name": "vn1", "vrf": VRF, "subnets": ["10.0.0.0/8", "2001:db8::/32"], "rules": RULES}],
            "switches": [{
                "name": "ptf",
                "address": str(test_param("grpcaddr")),
                "device_id": self.device_id,
                "election_id": ELECTION_ID,
                "p4info": str(Path(test_param("p4info")).resolve()),
                "device_config": str(Path(test_param("config")).resolve()),
                "cpu_port": self.cpu_port,
                "router_mac": ROUTER_MAC,
                "vmis": [
                    {"name": "vm1", "port": VMI_PORT, "vn": "vn1", "mac": VMI_MAC, "addresses": VM1_ADDRESSES},
                    {"name": "vm2", "port": VMI2_PORT, "vn": "vn1", "mac": VM2_MAC, "addresses": VM2_ADDRESSES},
                ],
                "fabric_ports": [{"port": FABRIC_PORT, "vn": "vn1"}],
                "routes": [{"vn": "vn1", "prefix": "0.0.0.0/0", "port": FABRIC_PORT, "mac": NEXT_HOP_MAC},
                           {"vn": "vn1", "prefix": "::/0", "port": FABRIC_PORT, "mac": NEXT_HOP_MAC}],
            }],
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _wait_ready(self) -> None:
        """fatflowd is primary and has applied the configuration; the base's client is a backup;
        the switch holds every configuration entry the file asks for."""
        assert self.api is not None and self.sw is not None
        want = len(desired.desired_state(self.cfg, self.sw_cfg, {}).entries)
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                self.fail(f"fatflowd exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            try:
                st = self.api.get_stats().switches[0]
                last = f"state {st.state}, {st.config_entries} configuration entries"
                if st.state == "primary" and st.config_entries == want and not self.sw.is_primary \
                        and len(self.config_entries()) == want:
                    return
            except FatflowError as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                self.fail(f"fatflowd not ready within {READY_TIMEOUT} s ({last}; want {want} entries, "
                          f"base client primary: {self.sw.is_primary}):\n{self.log_tail()}")
            time.sleep(0.1)

    def _stop_fatflowd(self) -> None:
        problems: list[str] = []
        for w in self.watchers:
            w.stop()
        if self.api is not None:
            self.api.close()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(10)
                if rc != 0:
                    problems.append(f"fatflowd exited with {rc} on SIGTERM")
            except subprocess.TimeoutExpired:
                problems.append("fatflowd did not exit within 10 s of SIGTERM (killed)")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        logging.info("fatflowd log:\n%s", self.log_tail(400))
        try:
            if self.sw is not None:
                # The switch promotes the remaining client (this test's) when fatflowd's stream ends.
                self.wait_for(lambda: self.sw is not None and self.sw.is_primary, 10,
                              "the base's client to become primary again after fatflowd stopped")
                self.remove_fatflowd_state()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    def remove_fatflowd_state(self) -> None:
        """Delete what fatflowd wrote: every table entry (flows and configuration), clone session
        and multicast group, and the flow digest's DigestEntry."""
        assert self.sw is not None
        self.call(self.sw.delete_many([finsy.P4TableEntry(), finsy.P4CloneSessionEntry(),
                                       finsy.P4MulticastGroupEntry()]))
        with contextlib.suppress(finsy.P4ClientError):
            self.call(self.sw.delete([p4rt.flow_digest_entry()]))

    # -- the switch, read back ----------------------------------------------------------------
    def config_entries(self) -> list[finsy.P4TableEntry]:
        flow_tables = {dp.FLOW_V4_TABLE, dp.FLOW_V6_TABLE}
        assert self.sw is not None
        return [e for e in self.read(finsy.P4TableEntry())
                if self.sw.p4info.tables[e.table_id].name not in flow_tables]

    def flow_entries(self) -> dict[FlowKey, finsy.P4TableEntry]:
        """Every flow entry the switch holds, by key."""
        assert self.sw is not None
        schema = self.sw.p4info
        out: dict[FlowKey, finsy.P4TableEntry] = {}
        for table in (dp.FLOW_V4_TABLE, dp.FLOW_V6_TABLE):
            for e in self.read(finsy.P4TableEntry(table)):
                w = p4rt.decode_table_entry(schema, e.encode_entry(schema))
                out[dp.flow_key_of_match(w.table, {k: v for k, v in w.match if isinstance(v, int)})] = e
        return out

    def wait_flows(self, predicate: Callable[[dict[FlowKey, finsy.P4TableEntry]], bool], what: str,
                   timeout: float = LEARN_TIMEOUT, check: Callable[[dict[FlowKey, Any]], None] | None = None,
                   ) -> dict[FlowKey, finsy.P4TableEntry]:
        """Poll the flow tables until ``predicate`` holds (``check`` runs on every read)."""
        deadline = time.monotonic() + timeout
        while True:
            flows = self.flow_entries()
            if check is not None:
                check(flows)
            if predicate(flows):
                return flows
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout} s waiting for {what}; the switch holds "
                          f"{sorted(map(str, flows))}\nfatflowd log:\n{self.log_tail()}")
            time.sleep(0.05)

    def action_name(self, entry: finsy.P4TableEntry) -> str:
        """The full P4Info name of an entry's action (a read gives the alias)."""
        assert self.sw is not None and isinstance(entry.action, finsy.P4TableAction)
        return str(self.sw.p4info.actions[entry.action.name].name)

    def key(self, pkt: Packet) -> FlowKey:
        """The reference key of a frame sent by vm1."""
        return reference_key(self.vm1, pkt, Direction.FROM_VM)

    def learn(self, pkts: list[Packet]) -> dict[FlowKey, finsy.P4TableEntry]:
        """Send each frame from vm1 (a miss: forwarded by the miss policy) and wait until fatflowd
        has installed the flows of all of them."""
        for pkt in pkts:
            self.send(VMI_PORT, pkt)
            self.expect(routed(pkt), FABRIC_PORT)
        keys = {self.key(p) for p in pkts}
        return self.wait_flows(lambda f: keys <= f.keys(), f"fatflowd to install {sorted(map(str, keys))}")

    def forward(self, pkt: Packet, port: int = FABRIC_PORT) -> None:
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), port)

    def stats(self) -> Any:
        assert self.api is not None
        return self.api.get_stats().switches[0]

    def watch(self, **kw: Any) -> Watcher:
        """A WatchFlows stream, registered with fatflowd before this returns."""
        assert self.api is not None
        before = self.api.get_stats().watchers
        w = Watcher(self.api, **kw)
        self.watchers.append(w)
        self.wait_for(lambda: self.api is not None and self.api.get_stats().watchers > before, 5,
                      "fatflowd to register the WatchFlows stream")
        return w

    def packet(self, pkt: Packet) -> tuple[str, str, int, int, int]:
        f = packet_fields(pkt)
        return str(f.src), str(f.dst), f.protocol, f.sport, f.dport


def size(pkts: list[Packet]) -> int:
    return sum(len(bytes(p)) for p in pkts)


class LearnTest(FatflowdTest):
    """Frames of several fat flows (DNS per /28, DNS6 per /64, HTTPS per /26 -> /24) and of a
    normal flow become flow entries whose keys are the reference key function's, with the
    protocol's lifetime as idle timeout; later frames of the same fat flows (other hosts, other
    remote addresses and ports) hit them: forwarded, counted per entry, no new setup. fatflowd's
    ListFlows shows the same keys and the switch's counters."""

    def runTest(self) -> None:
        firsts = [frame("10.0.1.3", "8.8.8.8", 17, 5000, 53),
                  frame("10.0.1.20", "8.8.8.8", 17, 5000, 53),
                  frame("2001:db8:0:1::5", "2001:4860::8888", 17, 5000, 53),
                  frame("10.0.1.3", "203.0.113.10", 6, 40000, 443),
                  frame("10.0.1.3", "20.0.0.1", 6, 40000, 80)]
        laters = [[frame("10.0.1.5", "1.1.1.1", 17, 6000, 53), frame("10.0.1.3", "9.9.9.9", 17, 6001, 53)],
                  [frame("10.0.1.20", "1.1.1.1", 17, 6000, 53, payload=b"x" * 300)],
                  [frame("2001:db8:0:1::6", "2001:4860::8844", 17, 6000, 53)],
                  [frame("10.0.1.5", "203.0.113.99", 6, 40001, 443, payload=b"y" * 100)],
                  [frame("10.0.1.3", "20.0.0.1", 6, 40000, 80, payload=b"z" * 50)]]
        keys = [self.key(p) for p in firsts]
        self.assertEqual(len(set(keys)), len(keys), "the first frames are of different flows")
        self.assertEqual([str(k) for k in keys],
                         ["vrf 1 udp 10.0.1.0/28:0 -> 0.0.0.0/0:53", "vrf 1 udp 10.0.1.16/28:0 -> 0.0.0.0/0:53",
                          "vrf 1 udp [2001:db8:0:1::]/64:0 -> [::]/0:53",
                          "vrf 1 tcp 10.0.1.0/26:0 -> 203.0.113.0/24:443",
                          "vrf 1 tcp 10.0.1.3/32:40000 -> 20.0.0.1/32:80"])
        for k, later in zip(keys, laters, strict=True):
            self.assertEqual({self.key(p) for p in later}, {k})
        flows = self.learn(firsts)
        self.assertEqual(set(flows), set(keys), "the switch holds exactly the learned keys")
        for k, e in flows.items():
            self.assertEqual(e.idle_timeout_ns, 60 * 10**9, f"lifetime of {k}")
            self.assertEqual(self.action_name(e), dp.FLOW_FORWARD, describe(e))
            self.assertEqual(self.direct_counter(e), (0, 0), f"{k}: the missed first frame is not counted")
        setups = self.stats().setups
        self.assertEqual(setups, len(keys))
        for later in laters:
            for pkt in later:
                self.forward(pkt)
        self.expect_nothing_else(0.3)
        want = {k: (len(later), size(later)) for k, later in zip(keys, laters, strict=True)}
        self.wait_for(lambda: {k: self.direct_counter(e) for k, e in flows.items()} == want, 5,
                      f"the flow entries' counters {want}")
        time.sleep(0.3)
        self.assertEqual(self.stats().setups, setups, "hits are not set up again")
        assert self.api is not None
        listed = {f.text: f for f in self.api.list_flows().flows}
        self.assertEqual(set(listed), {str(k) for k in keys})
        for k in keys:
            f = listed[str(k)]
            self.assertEqual((f.packets, f.bytes), want[k], str(k))
            self.assertEqual((f.context.vmi, f.context.ingress_port, f.context.direction, f.context.lifetime),
                             ("vm1", VMI_PORT, "from_vm", 60), str(k))
            self.assertEqual(f.fat, k.protocol != 6 or k.dport == 443, f"{k}: fat flag")


class ExpireTest(FatflowdTest):
    """UDP flows live 2 s (TCP 60 s): an idle UDP flow's entry disappears and WatchFlows reports
    the expiry (reason idle) with its final packet and byte counts; a UDP flow kept busy by its
    traffic outlives it and expires once the traffic stops; the idle TCP flow stays."""

    flowtable = {"lifetime": {"default": 60, "udp": 2}}

    def runTest(self) -> None:
        watcher = self.watch(expired=True)
        idle = frame("10.0.1.3", "8.8.8.8", 17, 5000, 53)
        busy = frame("10.0.1.20", "8.8.8.8", 17, 5000, 53)
        tcp = frame("10.0.1.3", "20.0.0.1", 6, 40000, 80)
        k_idle, k_busy, k_tcp = self.key(idle), self.key(busy), self.key(tcp)
        flows = self.learn([idle, busy, tcp])
        self.assertEqual(flows[k_idle].idle_timeout_ns, 2 * 10**9)
        self.assertEqual(flows[k_tcp].idle_timeout_ns, 60 * 10**9)
        hits = [frame("10.0.1.5", "1.1.1.1", 17, 6000, 53, payload=b"a" * 40),
                frame("10.0.1.3", "9.9.9.9", 17, 6001, 53, payload=b"b" * 200)]
        for pkt in hits:
            self.forward(pkt)
        busy_sent: list[Packet] = []
        start = time.monotonic()
        gone_at = None
        while True:  # keep the busy flow busy until the idle one is gone and 3 s more
            pkt = frame("10.0.1.21", "8.8.4.4", 17, 7000 + len(busy_sent), 53)
            self.forward(pkt)
            busy_sent.append(pkt)
            flows = self.flow_entries()
            if gone_at is None and k_idle not in flows:
                gone_at = time.monotonic()
            if gone_at is not None and time.monotonic() - gone_at > 3:
                break
            if time.monotonic() - start > 20:
                self.fail(f"the idle flow {k_idle} did not expire within 20 s; the switch holds "
                          f"{sorted(map(str, flows))}\n{self.log_tail()}")
            self.assertIn(k_busy, flows, "a flow with traffic every 0.4 s does not expire after 2 s")
            time.sleep(0.4)
        self.assertIn(k_tcp, self.flow_entries())
        self.wait_for(lambda: len(watcher.expired()) >= 1, 5, "the idle flow's EXPIRED event")
        ev = watcher.expired()[0]
        self.assertEqual((ev.flow.text, ev.reason), (str(k_idle), "idle"))
        self.assertEqual((ev.flow.packets, ev.flow.bytes), (len(hits), size(hits)))
        self.assertEqual(ev.flow.context.lifetime, 2)
        # The traffic stops: the busy flow expires too, with every hit counted.
        self.wait_flows(lambda f: k_busy not in f, f"{k_busy} to expire", timeout=15)
        self.wait_for(lambda: len(watcher.expired()) >= 2, 5, "the busy flow's EXPIRED event")
        evs = {e.flow.text: e for e in watcher.expired()}
        self.assertEqual(set(evs), {str(k_idle), str(k_busy)}, "only the UDP flows expired")
        self.assertEqual((evs[str(k_busy)].reason, evs[str(k_busy)].flow.packets, evs[str(k_busy)].flow.bytes),
                         ("idle", len(busy_sent), size(busy_sent)))
        self.assertEqual(set(self.flow_entries()), {k_tcp})
        assert self.api is not None
        self.assertEqual([f.text for f in self.api.list_flows().flows], [str(k_tcp)])
        st = self.stats()
        self.assertEqual((st.flows, st.expiries), (1, 2))
        self.assertIsNone(watcher.error)


class RecycleTest(FatflowdTest):
    """max_flows 3: with more flows the switch never holds more than 3 flow entries; each new
    flow recycles the oldest (WatchFlows: reason recycled, with its counters); a recycled flow's
    next packet is a miss and learns it again, recycling the then oldest."""

    flowtable = {"max_flows": 3}

    def runTest(self) -> None:
        watcher = self.watch(expired=True)
        pkts = [frame("10.0.1.3", "20.0.0.1", 6, 40000, 1000 + i) for i in range(6)]
        keys = [self.key(p) for p in pkts]
        most = 0

        def at_most_three(flows: dict[FlowKey, Any]) -> None:
            nonlocal most
            most = max(most, len(flows))
            self.assertLessEqual(len(flows), 3, f"the switch holds {sorted(map(str, flows))}")

        hits = [frame("10.0.1.3", "20.0.0.1", 6, 40000, 1000 + i, payload=b"h" * (10 * i)) for i in range(6)]
        for i, pkt in enumerate(pkts):
            self.forward(pkt)
            want = set(keys[max(0, i - 2):i + 1])
            flows = self.wait_flows(lambda f, want=want: set(f) == want,  # type: ignore[misc]
                                    f"the newest three flows {sorted(map(str, want))}", check=at_most_three)
            self.forward(hits[i])
            entry, counted = flows[keys[i]], (1, len(bytes(hits[i])))
            self.wait_for(lambda e=entry, c=counted: self.direct_counter(e) == c,
                          5, f"the hit of {keys[i]}")
        self.assertEqual(most, 3)
        self.wait_for(lambda: len(watcher.expired()) >= 3, 5, "three recycle records")
        recycled = watcher.expired()
        self.assertEqual([(e.flow.text, e.reason) for e in recycled], [(str(k), "recycled") for k in keys[:3]])
        self.assertEqual([(e.flow.packets, e.flow.bytes) for e in recycled], [(1, len(bytes(h))) for h in hits[:3]])
        # The oldest flow comes back: a miss, learned again, and the then oldest (keys[3]) goes.
        self.forward(pkts[0])
        self.wait_flows(lambda f: set(f) == {keys[4], keys[5], keys[0]}, "flow 0 relearned, flow 3 recycled",
                        check=at_most_three)
        self.wait_for(lambda: len(watcher.expired()) >= 4, 5, "the fourth recycle record")
        self.assertEqual(watcher.expired()[3].flow.text, str(keys[3]))
        st = self.stats()
        self.assertEqual((st.flows, st.max_flows, st.recycles, st.setups), (3, 3, 4, 7))
        self.assertIsNone(watcher.error)


class UpdateTest(FatflowdTest):
    """UpdateFlow through fatflowd's API changes the flow's entry on the switch: mirror copies
    every packet to the analyzer, offloaded stops the copies, verdict drop makes the switch drop
    the fat flow's packets (hits, no new setup), an egress override sends them out of vm2's port
    (with the route's MAC rewrite), egress 0 back to the route's port. Any packet of the fat flow
    addresses it; GetFlow reads the context back."""

    def runTest(self) -> None:
        assert self.api is not None
        first = frame("10.0.1.3", "8.8.8.8", 17, 5000, 53)
        key = self.key(first)
        entry = self.learn([first])[key]
        other = frame("10.0.1.5", "1.1.1.1", 17, 6000, 53)  # another packet of the same fat flow
        sel = self.packet(other)

        def update(**kw: Any) -> Any:
            r = self.api.update_flow(packet=sel, vmi="vm1", **kw)  # type: ignore[union-attr]
            self.assertEqual((r.status, r.flow.text), (pb.UpdateFlowResult.APPLIED, str(key)), f"UpdateFlow {kw}")
            return r

        def action() -> tuple[str, dict[str, int]]:
            (e,) = self.read(finsy.P4TableEntry(entry.table_id, match=entry.match))
            return self.action_name(e), dict(e.action.args)

        update(mirror=True)
        self.assertEqual(action(), (dp.FLOW_FORWARD, {"mirror": 1, "offloaded": 0, "egress_port": 0}))
        for _ in range(2):
            self.send(VMI_PORT, other)
            self.expect(other, ANALYZER_PORT)
            self.expect(routed(other), FABRIC_PORT)
        update(offloaded=True)
        self.assertEqual(action(), (dp.FLOW_FORWARD, {"mirror": 1, "offloaded": 1, "egress_port": 0}))
        self.forward(other)
        self.expect_nothing_else(0.3)

        setups, counted = self.stats().setups, self.direct_counter(entry)[0]
        update(verdict="drop")
        self.assertEqual(action()[0], dp.FLOW_DROP)
        self.assertEqual(self.api.get_flow(packet=sel, vmi="vm1").context.verdict, pb.VERDICT_DROP)
        for pkt in (other, first):
            self.send(VMI_PORT, pkt)
        self.expect_nothing_else(0.5)
        self.wait_for(lambda: self.direct_counter(entry)[0] == counted + 2, 5, "the dropped packets counted as hits")

        update(verdict="forward", egress_port=VMI2_PORT)
        self.assertEqual(action(), (dp.FLOW_FORWARD, {"mirror": 1, "offloaded": 1, "egress_port": VMI2_PORT}))
        self.forward(other, VMI2_PORT)
        self.expect_nothing_else(0.3)
        update(egress_port=0)
        self.forward(other, FABRIC_PORT)
        self.expect_nothing_else(0.3)
        ctx = self.api.get_flow(packet=sel, vmi="vm1").context
        self.assertEqual((ctx.mirror, ctx.offloaded, ctx.verdict, ctx.egress_port), (True, True, pb.VERDICT_FORWARD, 0))
        self.assertEqual(self.stats().setups, setups, "updates change the entry in place, nothing is relearned")
        self.assertEqual(set(self.flow_entries()), {key})


class UpdateBeforeLearnTest(FatflowdTest):
    """An update of a flow not learned yet: kept (PENDING) and applied when the flow is learned
    (its later packets are dropped), or, with preinstall, installed at once (PREINSTALLED) so
    that its very first packet already hits it and leaves by the egress override (no miss digest)."""

    def runTest(self) -> None:
        assert self.api is not None
        pending = frame("10.0.1.3", "8.8.8.8", 17, 5000, 53)
        r = self.api.update_flow(packet=self.packet(pending), vmi="vm1", verdict="drop")
        self.assertEqual(r.status, pb.UpdateFlowResult.PENDING)
        entry = self.learn([pending])[self.key(pending)]
        self.wait_for(lambda: self.action_name(self.read(finsy.P4TableEntry(entry.table_id, match=entry.match))[0])
                      == dp.FLOW_DROP, 5, "the pending verdict to be applied")
        self.send(VMI_PORT, frame("10.0.1.5", "1.1.1.1", 17, 6000, 53))
        self.expect_nothing_else(0.5)

        pre = frame("10.0.1.70", "203.0.113.7", 6, 41000, 443)
        before = self.stats()
        r = self.api.update_flow(packet=self.packet(pre), vmi="vm1", egress_port=VMI2_PORT, preinstall=True)
        self.assertEqual((r.status, r.flow.text), (pb.UpdateFlowResult.PREINSTALLED, str(self.key(pre))))
        flows = self.flow_entries()
        self.assertIn(self.key(pre), flows)
        self.forward(pre, VMI2_PORT)
        self.expect_nothing_else(0.3)
        self.wait_for(lambda: self.direct_counter(flows[self.key(pre)]) == (1, len(bytes(pre))), 5,
                      "the first packet counted as a hit")
        time.sleep(0.3)  # a digest, had there been a miss, would have reached fatflowd by now
        after = self.stats()
        self.assertEqual((after.setups, after.digests), (before.setups + 1, before.digests),
                         "the preinstall is the flow's one setup; its first packet is no miss (no digest)")
