"""The network-namespace lab of examples/lab.yaml, for real: $FATFLOW_TARGET (softswitch by default,
or BMv2) with veth ports, fatflowd
with the file, hosts in namespaces. Pings and iperf3 across the switch, the flows fatflowd installs
for that traffic read back over P4Runtime, and lab-down leaving nothing behind (also after SIGKILL).

Each lab here uses its own name prefix, run directory and P4Runtime port, so these tests can run
beside a lab started with `make lab`. Root only (skipped loudly otherwise).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LAB_YAML, REPO, TARGET, assert_pinged, not_root, require_root

from softswitch.launch import PipelineBuild, free_port
from topo import lab, netns
from topo.flows import SwitchFlow, read_flows

pytestmark = [pytest.mark.integration, pytest.mark.root, not_root("the netns lab")]

PREFIX = f"ft{os.getpid() % 10000}"  # 6 characters at most: interface names stay short


def _ns(state: lab.LabState, host: str, *cmd: str, timeout: float = 30, check: bool = True) -> str:
    proc = subprocess.run(["ip", "netns", "exec", state.namespace(host), *cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{host}: {' '.join(cmd)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(0.2)


def assert_nothing_left(prefix: str) -> None:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert not [n for n in names.split() if n.startswith(f"{prefix}-")], names
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    assert f" {prefix}-" not in links, links
    assert netns.marked_pids(prefix) == []


def _up(tmp: Path, pipeline: PipelineBuild, prefix: str = PREFIX, **kw: Any) -> lab.LabState:
    return lab.up(LAB_YAML, run_dir=tmp, prefix=prefix, address=f"127.0.0.1:{free_port()}",
                  p4info=pipeline.p4info, device_config=pipeline.device_config, say=lambda s: None,
                  api_listen=f"127.0.0.1:{free_port()}", **kw)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, target_pipeline: PipelineBuild) -> Iterator[lab.LabState]:
    # The traffic tests run on $FATFLOW_TARGET (as `make lab TARGET=bmv2`); the clean-up tests
    # below use softswitch: they test topo's cleaning, not the switch.
    require_root("the netns lab")
    run_dir = tmp_path_factory.mktemp("lab")
    try:
        yield _up(run_dir, target_pipeline, target=TARGET)
    finally:
        removed = lab.down(run_dir, PREFIX)
        print(f"lab down: {removed}")
        assert_nothing_left(PREFIX)


def flows_of(state: lab.LabState) -> list[SwitchFlow]:
    return read_flows(state.address, state.device_id, Path(state.p4info), state.cpu_port)


def test_lab_is_up_as_configured(running: lab.LabState) -> None:
    assert [h["namespace"] for h in running.hosts] == [f"{PREFIX}-{n}" for n in ("vm1", "vm2", "fab3", "analyzer")]
    out = _ns(running, "vm1", "ip", "-o", "addr", "show", "dev", "eth0")
    assert "10.0.0.3/32" in out and "2001:db8:10::3/128" in out and "fe80" not in out
    assert "02:00:00:00:01:01" in _ns(running, "vm1", "ip", "link", "show", "eth0")
    assert "02:00:00:00:00:bb" in _ns(running, "fab3", "ip", "link", "show", "eth0")
    assert "PERMANENT" in _ns(running, "vm1", "ip", "neigh", "show", "10.0.0.1")
    assert "running" in lab.status(Path(running.run_dir)) and "NOT RUNNING" not in lab.status(Path(running.run_dir))
    # a second lab with the same prefix is refused while this one runs
    with pytest.raises(lab.LabError, match="is running"):
        lab.up(LAB_YAML, run_dir=Path(running.run_dir) / "other", prefix=PREFIX, say=lambda s: None)


def test_ping_across_the_switch_installs_flows(running: lab.LabState) -> None:
    out = _ns(running, "vm1", "ping", "-c", "4", "-i", "0.2", "-W", "3", "203.0.113.1", check=False)
    assert_pinged(out)
    out = _ns(running, "vm1", "ping", "-c", "4", "-i", "0.2", "-W", "3", "2001:db8:ffff::1", check=False)
    assert_pinged(out)
    out = _ns(running, "vm2", "ping", "-c", "4", "-i", "0.2", "-W", "3", "10.0.0.3", check=False)
    assert_pinged(out)

    def installed() -> dict[str, SwitchFlow]:
        return {str(f.key): f for f in flows_of(running)}

    # vm1's icmp rule (examples/lab.yaml) zeroes the echo identifier: one flow per peer
    want = ["vrf 10 icmp 10.0.0.3/32:0 -> 203.0.113.1/32:0", "vrf 10 icmp 203.0.113.1/32:0 -> 10.0.0.3/32:0"]
    flows = _eventually(lambda: (lambda got: got if all(k in got for k in want) else None)(installed()), 10,
                        f"flows {want}")
    assert sum(flows[k].packets for k in want) >= 2  # later pings hit the installed entries
    assert any(k.startswith("vrf 10 icmpv6 [2001:db8:10::3]/128:") for k in flows), sorted(flows)
    assert any(k.startswith("vrf 10 icmp 10.0.0.4/32:") and "-> 10.0.0.3/32:0" in k for k in flows), sorted(flows)


def test_the_fatflowctl_command_the_lab_prints_lists_its_flows(running: lab.LabState) -> None:
    line = next(x for x in lab.usage(running, python=f"{REPO}/.venv/bin/python").splitlines()
                if "fatflowctl --address" in x and "flows list" in x)
    cmd = line.split("#")[0].split()
    assert cmd[1:3] == ["--address", running.api]
    out = _ns(running, "vm1", "ping", "-c", "2", "-i", "0.2", "-W", "3", "203.0.113.1", check=False)
    assert_pinged(out)

    def listed() -> Any:
        got = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=30, check=False)
        assert got.returncode == 0, got.stderr
        texts = {f["text"] for f in json.loads(got.stdout)["flows"]}
        return texts if "vrf 10 icmp 10.0.0.3/32:0 -> 203.0.113.1/32:0" in texts else None

    _eventually(listed, 10, "the ping's flow in fatflowctl flows list")


def test_iperf3_tcp_between_vm_and_fabric_host(running: lab.LabState) -> None:
    port = "5299"
    server = subprocess.Popen(["ip", "netns", "exec", running.namespace("fab3"), "iperf3", "-s", "-1", "-B",
                               "203.0.113.1", "-p", port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        result = json.loads(_ns(running, "vm1", "iperf3", "-c", "203.0.113.1", "-p", port, "-t", "2", "-J",
                                timeout=60))
        received = result["end"]["sum_received"]["bytes"]
        assert received > 1_000_000, result["end"]
        print(f"iperf3 through {TARGET}: {result['end']['sum_received']['bits_per_second'] / 1e6:.0f} Mbit/s")
    finally:
        server.kill()
        server.wait()
    keys = [str(f.key) for f in flows_of(running)]
    assert any(k.startswith("vrf 10 tcp 10.0.0.3/32:") and k.endswith(f"-> 203.0.113.1/32:{port}") for k in keys), keys


def test_curl_and_dig(running: lab.LabState) -> None:
    fab = running.namespace("fab3")
    servers = [subprocess.Popen(["ip", "netns", "exec", fab, sys.executable, "-m", mod, *args], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for mod, args in (("http.server", ["80", "--bind", "203.0.113.1"]), ("topo.dnsd", ["203.0.113.1"]))]
    try:
        code = _eventually(lambda: _ns(running, "vm1", "curl", "-s", "-m", "3", "-o", "/dev/null", "-w",
                                       "%{http_code}", "http://203.0.113.1/", check=False) == "200", 15, "curl")
        assert code
        assert _ns(running, "vm2", "dig", "+short", "+time=2", "+tries=3", "@203.0.113.1", "example.org").strip() \
            == "192.0.2.53"
    finally:
        for s in servers:
            s.kill()
            s.wait()
    keys = [str(f.key) for f in flows_of(running)]
    # the VN's rules: HTTP per /28 to the server /24, DNS per /28 of subscribers to any server
    assert "vrf 10 tcp 10.0.0.0/28:0 -> 203.0.113.0/24:80" in keys, keys
    assert "vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53" in keys, keys


def test_lab_down_after_sigkill(tmp_path: Path, pipeline: PipelineBuild) -> None:
    """The CLI as `make lab` runs it; its switch and fatflowd (and a server inside a host) killed
    with SIGKILL; `down` still removes everything, and a second `down` finds nothing."""
    require_root("the netns lab")
    prefix = f"fk{os.getpid() % 10000}"
    up = subprocess.run([sys.executable, "-m", "topo", "up", str(LAB_YAML), "--prefix", prefix, "--run-dir",
                         str(tmp_path), "--grpc-addr", f"127.0.0.1:{free_port()}", "--p4info", str(pipeline.p4info),
                         "--device-config", str(pipeline.device_config), "--api-listen", f"127.0.0.1:{free_port()}"],
                        cwd=REPO, capture_output=True,
                        text=True, timeout=180, check=False)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"ip netns exec {prefix}-vm1 ping" in up.stdout
        state = lab.read_state(tmp_path)
        assert state is not None
        subprocess.Popen(["ip", "netns", "exec", f"{prefix}-fab3", "sleep", "600"], start_new_session=True)
        for pid in state.pids.values():
            os.kill(pid, signal.SIGKILL)
        _eventually(lambda: not any(Path(f"/proc/{p}/cmdline").exists() and Path(f"/proc/{p}/cmdline").read_bytes()
                                    for p in state.pids.values()), 10, "the processes to die")
        assert netns.leftovers(prefix).namespaces
    finally:
        down = subprocess.run([sys.executable, "-m", "topo", "down", "--run-dir", str(tmp_path)], cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    assert f"{prefix}-vm1" in down.stdout
    assert_nothing_left(prefix)
    again = subprocess.run([sys.executable, "-m", "topo", "down", "--run-dir", str(tmp_path), "--prefix", prefix],
                           cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert "removed nothing" in again.stdout


def test_up_killed_midway_then_down(tmp_path: Path, pipeline: PipelineBuild) -> None:
    """`topo up` itself killed with SIGKILL while building: its namespaces and switch remain,
    found by prefix and process marker."""
    require_root("the netns lab")
    prefix = f"fm{os.getpid() % 10000}"
    proc = subprocess.Popen([sys.executable, "-m", "topo", "up", str(LAB_YAML), "--prefix", prefix, "--run-dir",
                             str(tmp_path), "--grpc-addr", f"127.0.0.1:{free_port()}", "--p4info",
                             str(pipeline.p4info), "--device-config", str(pipeline.device_config),
                             "--api-listen", f"127.0.0.1:{free_port()}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _eventually(lambda: (lambda s: s is not None and "switch" in s.pids)(lab.read_state(tmp_path)), 60,
                    "the switch to be started")
        proc.kill()
        proc.wait()
        left = netns.leftovers(prefix)
        assert left.namespaces and left.pids
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        lab.down(tmp_path, prefix)
    assert_nothing_left(prefix)


def test_failed_up_removes_what_it_built(tmp_path: Path, pipeline: PipelineBuild) -> None:
    """fatflowd cannot push a broken device config: `up` gives up after its timeout and removes
    the namespaces, links and processes it had made."""
    require_root("the netns lab")
    broken = tmp_path / "broken.p4"
    broken.write_text("this is not P4\n")
    prefix = f"fb{os.getpid() % 10000}"
    with pytest.raises(lab.LabError, match=r"did not become primary|exited"):
        lab.up(LAB_YAML, run_dir=tmp_path / "run", prefix=prefix, address=f"127.0.0.1:{free_port()}",
               p4info=pipeline.p4info, device_config=broken, timeout=8, say=lambda s: None,
               api_listen=f"127.0.0.1:{free_port()}")
    assert_nothing_left(prefix)
