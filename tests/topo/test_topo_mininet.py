"""The lab of examples/lab.yaml as a Mininet network: topo.mininet_topo's SoftSwitch (P4Runtime,
veth ports from Mininet), hosts from the plan, fatflowd with the configuration, real pings across
the switch, and the flows read back over P4Runtime. Root only; Mininet is installed with apt-get
when missing (as CI runs as root); every skip says why, loudly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LAB_YAML, assert_pinged, not_root, require_root

from softswitch.launch import PipelineBuild
from topo import netns
from topo.flows import read_flows

pytestmark = [pytest.mark.integration, pytest.mark.root, not_root("the Mininet lab")]


def _skip(reason: str) -> None:
    print(f"\n*** MININET TEST SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(f"MININET TEST SKIPPED: {reason}")


@pytest.fixture(scope="module")
def mininet_topo() -> Iterator[Any]:
    require_root("the Mininet lab")
    if shutil.which("mnexec") is None and shutil.which("apt-get") is not None:
        print("\n*** installing mininet (apt-get install -y mininet)", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "mininet"], check=False, capture_output=True, timeout=900,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if shutil.which("ethtool") is None and shutil.which("apt-get") is not None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "ethtool"], check=False, capture_output=True, timeout=600)
    try:
        from topo import mininet_topo as mt
    except ImportError as exc:
        _skip(str(exc))
    reason = mt.mininet_skip_reason()
    if reason:
        _skip(reason)
    yield mt


def test_mininet_lab_pings_and_flows(mininet_topo: Any, tmp_path: Path, pipeline: PipelineBuild) -> None:
    mt = mininet_topo
    switch_name = "ffm9"
    with mt.mininet_lab(LAB_YAML, tmp_path, switch_name=switch_name, p4info=pipeline.p4info,
                        device_config=pipeline.device_config) as ml:
        host_pids = [h.pid for h in ml.net.hosts]
        vm1, vm2 = ml.host("vm1"), ml.host("vm2")
        out = vm1.cmd("ping -c 4 -i 0.2 -W 3 203.0.113.1")
        assert_pinged(out)
        out = vm1.cmd("ping -c 4 -i 0.2 -W 3 2001:db8:ffff::1")
        assert_pinged(out)
        out = vm2.cmd("ping -c 4 -i 0.2 -W 3 10.0.0.3")
        assert_pinged(out)
        want = "vrf 10 icmp 10.0.0.3/32:0 -> 203.0.113.1/32:0"
        deadline = time.monotonic() + 10
        while True:
            flows = {str(f.key): f for f in read_flows(ml.switch.grpc_address, ml.switch.device_id, pipeline.p4info)}
            if want in flows or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert want in flows, sorted(flows)
        assert flows[want].packets >= 1
        assert any(k.startswith("vrf 10 icmp 10.0.0.4/32:") for k in flows), sorted(flows)
        switch_pid = ml.switch.proc.pid
        ffd_pid = ml.fatflowd.pid
    # nothing left: the switch's interfaces, its process, fatflowd, the hosts' shells
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    assert f" {switch_name}-eth" not in links and " vm1-eth0" not in links, links
    for pid in (switch_pid, ffd_pid, *host_pids):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert netns.marked_pids("ffm") == []
