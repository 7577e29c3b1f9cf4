"""`make demo` as a user runs it: a separate process, its own softswitch, real P4Runtime."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_collapses_flows_into_fat_flows_and_checks_itself() -> None:
    proc = subprocess.run([sys.executable, "-m", "examples.demo"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"(\d+) packet flows \(5-tuples\) became (\d+) flow-table entries .*: (\d+) fat flows, "
                  r"(\d+) normal flows", proc.stdout)
    assert m, proc.stdout
    flows, entries, fat, normal = map(int, m.groups())
    # 240 DNS subscribers in 15 /28s + the .240 one, 120 HTTPS in two /26s, the two seed ssh fat flows;
    # the 10 DNS flows to the VN's service address are excluded and stay normal flows
    assert (flows, entries, fat, normal) == (387, 30, 20, 10)
    assert "vrf 10 udp 10.0.1.16/28:0 -> 0.0.0.0/0:53" in proc.stdout
    assert "vrf 10 tcp 10.0.3.16/28:0 -> 20.0.0.16/28:0" in proc.stdout
