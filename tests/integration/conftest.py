"""Fixtures: the compiled pipeline (session), a switch process (module) and a connected, wiped
Lab (test). The switch is $FATFLOW_TARGET (targets.py): softswitch by default, or BMv2
simple_switch_grpc with p4c's pipeline (``FATFLOW_TARGET=bmv2``, veth ports, root)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from lab import Lab, open_lab
from targets import SwitchProcess, switch_process

from softswitch.launch import PipelineBuild

# finsy warns on every connection that the target has no gNMI service: expected here.
logging.getLogger("finsy").setLevel(logging.ERROR)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> PipelineBuild:
    from targets import pipeline_for, target_skip_reason

    reason = target_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return pipeline_for(tmp_path_factory.mktemp("p4build"))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, build: PipelineBuild) -> Iterator[SwitchProcess]:
    # ports: 1, 2 VMIs; 3 fabric; 4 analyzer
    with switch_process(tmp_path_factory.mktemp("switch"), ports=(1, 2, 3, 4)) as t:
        yield t


@pytest.fixture
async def lab(target: SwitchProcess, build: PipelineBuild) -> AsyncIterator[Lab]:
    for peer in target.peers.values():
        peer.drain()
    async with open_lab(target, build.p4info, build.device_config) as lab:
        yield lab


# ---- fatflowd tests: the target is $FATFLOW_TARGET (softswitch by default, bmv2) -------------------


@pytest.fixture(scope="session")
def ff_build(build: PipelineBuild) -> PipelineBuild:
    """The target's pipeline (the same as ``build``; the fatflowd tests' name for it)."""
    return build


@pytest.fixture
def switch(tmp_path: Path, ff_build: PipelineBuild) -> Iterator[SwitchProcess]:
    """A fresh target process (ports 1, 2 VMIs; 3 fabric; 4 analyzer)."""
    with switch_process(tmp_path / "sw1") as sp:
        yield sp


@pytest.fixture
def switch2(tmp_path: Path, ff_build: PipelineBuild) -> Iterator[SwitchProcess]:
    with switch_process(tmp_path / "sw2", device_id=2) as sp:
        yield sp
