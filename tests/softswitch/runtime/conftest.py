"""Fixtures: a P4Runtime server on an unused port with the fake device, and a raw
P4Runtime client connected to it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import rt_fakes
from rt_client import Client

from softswitch.runtime.server import P4RuntimeServer


@pytest.fixture
async def server() -> AsyncIterator[P4RuntimeServer]:
    dev = rt_fakes.FakeDevice()
    srv = P4RuntimeServer(dev, idle_sweep_interval=0.05)  # type: ignore[arg-type]
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(0)


@pytest.fixture
async def client(server: P4RuntimeServer) -> AsyncIterator[Client]:
    c = Client(server.port, election=10)
    await c.connect()
    yield c
    await c.close()


@pytest.fixture
async def primed(server: P4RuntimeServer, client: Client) -> Client:
    """A primary client with the fake pipeline committed."""
    await client.set_pipeline()
    return client
