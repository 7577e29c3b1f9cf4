"""Fixtures: the compiled pipeline (session), a softswitch process (module) and a
connected, wiped Lab (test)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from lab import Lab, open_lab

from softswitch.launch import PipelineBuild, Target, compile_pipeline, start_softswitch

P4_MAIN = Path(__file__).resolve().parents[2] / "p4src" / "fatflow_v1model.p4"

# finsy warns on every connection that the target has no gNMI service: expected here.
logging.getLogger("finsy").setLevel(logging.ERROR)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> PipelineBuild:
    return compile_pipeline(tmp_path_factory.mktemp("p4build"), P4_MAIN)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    # ports: 1, 2 VMIs; 3 fabric; 4 analyzer
    with start_softswitch(tmp_path_factory.mktemp("softswitch"), ports=(1, 2, 3, 4)) as t:
        yield t


@pytest.fixture
async def lab(target: Target, build: PipelineBuild) -> AsyncIterator[Lab]:
    for peer in target.peers.values():
        peer.drain()
    async with open_lab(target, build.p4info, build.device_config) as lab:
        yield lab
