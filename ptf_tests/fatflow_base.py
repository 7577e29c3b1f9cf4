"""Base class of the fat-flow PTF tests: a P4Runtime client (finsy) on a background event
loop, so that synchronous PTF tests can program the switch and read what it reports."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Coroutine
from ipaddress import ip_network
from pathlib import Path
from typing import Any, TypeVar

import finsy
import ptf
from ptf import testutils
from ptf.base_tests import BaseTest

from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.dataplane import FlowDigest, TableWrite

T = TypeVar("T")
ROUTER_MAC, NEXT_HOP_MAC, VMI_MAC = "02:00:00:00:00:aa", "02:00:00:00:00:bb", "02:00:00:00:01:01"

logging.getLogger("finsy").setLevel(logging.ERROR)


def mac(s: str) -> int:
    return int(s.replace(":", ""), 16)


class FatFlowTest(BaseTest):
    """Connects, pushes the pipeline, wipes all state and turns on digests in setUp."""

    def setUp(self) -> None:
        super().setUp()
        self.dataplane = ptf.dataplane_instance
        self.dataplane.flush()
        params = testutils.test_params_get()
        self.digests: queue.Queue[FlowDigest] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        opts = finsy.SwitchOptions(p4info=Path(params["p4info"]), p4blob=Path(params["device_config"]),
                                   device_id=int(params["device_id"]))
        self.sw = finsy.Switch("ptf", params["grpc_addr"], opts)
        self.call(self.sw.__aenter__())
        self.call(self.sw.delete_all())
        self.call(self.sw.insert([p4rt.flow_digest_entry()]))
        self._reader = asyncio.run_coroutine_threadsafe(self._read_digests(), self._loop)

    def tearDown(self) -> None:
        self._reader.cancel()
        self.call(self.sw.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        super().tearDown()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _read_digests(self) -> None:
        async for dl in self.sw.read_digests(dp.FLOW_DIGEST):
            await self.sw.write([dl.ack()])
            for d in p4rt.decode_digest_list(dl):
                self.digests.put(d)

    def write(self, writes: list[TableWrite]) -> None:
        self.call(self.sw.insert(p4rt.table_entries(writes)))

    def route(self, prefix: str, port: int, *, vrf: int = 1, dst_vmi_id: int = 0,
              dst_mac: str = NEXT_HOP_MAC) -> None:
        self.write([dp.route_entry(ip_network(prefix), port, vrf=vrf, src_mac=mac(ROUTER_MAC),
                                   dst_mac=mac(dst_mac), dst_vmi_id=dst_vmi_id)])

    def next_digest(self, timeout: float = 5) -> FlowDigest:
        return self.digests.get(timeout=timeout)

    def no_digest(self, timeout: float = 0.5) -> bool:
        try:
            self.digests.get(timeout=timeout)
        except queue.Empty:
            return True
        return False
