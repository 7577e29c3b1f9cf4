"""Fixtures for the lab tests: the repository root importable (``topo`` is not installed), the
pipeline compiled by softswitch into a temporary directory (nothing is written to build/), and a
loud skip when not root."""

from __future__ import annotations

import os
import re
import shutil
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


#: the switch of the netns lab's traffic tests, as for tests/integration: softswitch by default,
#: ``FATFLOW_TARGET=bmv2`` for simple_switch_grpc with p4c's pipeline (build/fatflow.json)
TARGET = os.environ.get("FATFLOW_TARGET", "softswitch")


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineBuild:
    return compile_pipeline(tmp_path_factory.mktemp("topo-pipeline"), REPO / "p4src" / "fatflow_v1model.p4")


@pytest.fixture(scope="session")
def target_pipeline(pipeline: PipelineBuild) -> PipelineBuild:
    """The pipeline of $FATFLOW_TARGET: softswitch's compile, or p4c's files for BMv2."""
    if TARGET == "softswitch":
        return pipeline
    if TARGET != "bmv2":
        pytest.fail(f"FATFLOW_TARGET={TARGET!r}: expected softswitch or bmv2")
    json_file, p4info = REPO / "build" / "fatflow.json", REPO / "build" / "fatflow.p4info.txtpb"
    reason = ("FATFLOW_TARGET=bmv2 but simple_switch_grpc is not on PATH" if shutil.which("simple_switch_grpc") is None
              else None if json_file.is_file() and p4info.is_file()
              else "FATFLOW_TARGET=bmv2 needs build/fatflow.json: run 'make p4' where p4c is installed")
    if reason is not None:
        print(f"\n*** {reason} -- SKIPPED", file=sys.stderr)
        pytest.skip(reason)
    return PipelineBuild(json_file, p4info)


def assert_pinged(out: str) -> None:
    """Most echo requests of a ``ping`` run were answered (the switch is pure Python on two shared
    cores: a lost reply under load is not a failure, a lost majority is)."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m is not None, out
    sent, received = int(m.group(1)), int(m.group(2))
    assert received > sent // 2, out
    if received < sent:
        print(f"note: ping lost {sent - received} of {sent}", file=sys.stderr)
