"""`make demo` as a user runs it: a separate process with its own lab (Unix-socket ports here, so it
runs without root and beside other tests), switch, fatflowd and classifier; it checks itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", TERM="dumb")
    return subprocess.run([sys.executable, "-m", "examples.demo", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=180, env=env)


def test_demo_runs_the_whole_system_and_checks_itself() -> None:
    proc = _demo("--mode", "unix")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    m = re.search(r"(\d+) packet flows \(5-tuples\) became (\d+) flow-table entries: (\d+) fat flows, "
                  r"(\d+) normal flows \((\d+) entries saved\)", out)
    assert m, out
    # 240 DNS subscribers in 15 /28s + the .240 one, 120 HTTPS in two /26s, the two seed ssh fat
    # flows, IPv6 DNS (one /60) and HTTPS (one /56); the 10 DNS flows to the VN's service address
    # are excluded and stay normal flows
    assert tuple(map(int, m.groups())) == (466, 32, 22, 10, 434)
    assert "vrf 10 udp 10.0.1.16/28:0 -> 0.0.0.0/0:53" in out
    assert re.search(r"enrichment: the classifier tagged and offloaded 32 flows: 27 dns, 2 ssh, 3 tls", out), out
    assert re.search(r"expiry: .* expired \(idle\), record: 1 packets", out), out
    assert "record reason recycled" in out and "recycles 1" in out
    assert "MISMATCH" not in out and "checked:" in out
    assert re.search(r"done in (\d+) s", out) and int(re.search(r"done in (\d+) s", out).group(1)) < 60  # type: ignore[union-attr]
    # everything is gone: no process of the demo's is left
    left = subprocess.run(["pgrep", "-f", "ffdemo-"], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout


@pytest.mark.skipif(shutil.which("simple_switch_grpc") is not None and (REPO / "build" / "fatflow.json").exists(),
                    reason="BMv2 is installed: the demo would run on it")
def test_demo_on_bmv2_says_clearly_when_bmv2_is_missing() -> None:
    proc = _demo("--target", "bmv2")
    assert proc.returncode == 2
    assert "BMv2 demo not run" in proc.stdout
