"""Fixtures for the lab tests: the repository root importable (``topo`` is not installed), the
pipeline compiled by softswitch into a temporary directory (nothing is written to build/), and a
loud skip when not root."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from softswitch.launch import PipelineBuild, compile_pipeline  # noqa: E402

LAB_YAML = REPO / "examples" / "lab.yaml"


def not_root(what: str) -> pytest.MarkDecorator:
    """A skip mark evaluated before any fixture (no pipeline is compiled for a skipped module)."""
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"NOT ROOT: {what} needs root (network namespaces, "
                              "veth pairs, AF_PACKET) -- SKIPPED")


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        reason = f"NOT ROOT: {what} needs root (network namespaces, veth pairs, AF_PACKET) -- SKIPPED"
        print(f"\n*** {reason}", file=sys.stderr)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineBuild:
    return compile_pipeline(tmp_path_factory.mktemp("topo-pipeline"), REPO / "p4src" / "fatflow_v1model.p4")


def assert_pinged(out: str) -> None:
    """Most echo requests of a ``ping`` run were answered (the switch is pure Python on two shared
    cores: a lost reply under load is not a failure, a lost majority is)."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m is not None, out
    sent, received = int(m.group(1)), int(m.group(2))
    assert received > sent // 2, out
    if received < sent:
        print(f"note: ping lost {sent - received} of {sent}", file=sys.stderr)
