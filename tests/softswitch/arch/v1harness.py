"""Helpers for running small v1model programs on a Device in-process (imported by the
tests of this directory; pytest puts the directory on sys.path)."""

from __future__ import annotations

from typing import Any

from softswitch.device import Device

PRELUDE = """
#include <core.p4>
#include <v1model.p4>
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
"""


class Harness:
    def __init__(self, source: str, cpu_port: int | None = None) -> None:
        self.now = 1_000_000_000
        self.dev = Device(cpu_port=cpu_port)
        self.dev.clock_ns = lambda: self.now
        self.dev.commit(Device.compile(PRELUDE + source, "test.p4"))
        self.out: list[tuple[int, bytes]] = []
        self.digests: list[tuple[str, tuple[int, ...]]] = []
        self.packet_ins: list[tuple[bytes, dict[str, int]]] = []
        self.dev.on_transmit = lambda p, f: self.out.append((p, f))
        self.dev.on_digest = lambda n, v: self.digests.append((n, v))
        self.dev.on_packet_in = lambda p, m: self.packet_ins.append((p, m))

    def send(self, port: int, frame: bytes) -> list[tuple[int, bytes]]:
        self.out.clear()
        self.dev.receive(port, frame)
        return list(self.out)

    def instance(self, name: str) -> Any:
        assert self.dev.program is not None
        return self.dev.program.compiled.instances[name]


def eth(dst: int, src: int, etype: int, payload: bytes = b"") -> bytes:
    return dst.to_bytes(6, "big") + src.to_bytes(6, "big") + etype.to_bytes(2, "big") + payload
