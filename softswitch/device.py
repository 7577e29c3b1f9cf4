"""A switch device: one loaded program for one architecture, its state, its ports.

Contract between the packet side (architecture, ports) and the P4Runtime server.
The device is NOT thread-safe: every method and callback runs on the one asyncio
event-loop thread of the process (ports feed packets from that loop).

TO BE IMPLEMENTED by the v1model/device work; the signatures are fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from softswitch import ir
from softswitch.interp.api import CompiledProgram

__all__ = ["Replica", "CloneSession", "LoadedProgram", "Device", "CompileError"]


class CompileError(Exception):
    """A program that cannot be loaded. ``str(e)`` holds p4c-style diagnostics, one per
    line: ``file:line:col: error: message``."""


@dataclass(frozen=True, slots=True)
class Replica:
    egress_port: int
    instance: int  # P4Runtime "instance" (egress_rid)


@dataclass(slots=True)
class CloneSession:
    replicas: list[Replica]
    class_of_service: int = 0
    packet_length_bytes: int = 0  # 0 = no truncation


@dataclass(slots=True)
class LoadedProgram:
    """A compiled program ready to be committed to a device."""

    source: str
    filename: str
    ir: ir.Program
    compiled: CompiledProgram
    #: controller header layouts from @controller_header("packet_in"/"packet_out"):
    #: list of (field name, bit width) in order; None when the program has none.
    packet_in_header: list[tuple[str, int]] | None = None
    packet_out_header: list[tuple[str, int]] | None = None
    #: digest struct type name -> list of (field name, bit width)
    digests: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class Device:
    """A v1model switch (simple_switch semantics).

    Callbacks set by the owner (the P4Runtime server):

    * ``on_digest(type_name, values)``: a ``digest<T>(receiver, data)`` was executed by a
      packet that finished ingress; ``values`` are T's fields in order (ints).
    * ``on_packet_in(payload, metadata)``: a packet left egress on the CPU port; the
      leading @controller_header("packet_in") header was stripped into ``metadata``
      (field name -> int).
    * ``on_transmit(port, frame)``: a packet leaves on a data port (the port backends
      hook in here; the CLI wires it to the ports).
    """

    device_id: int
    cpu_port: int | None
    program: LoadedProgram | None
    multicast_groups: dict[int, list[Replica]]
    clone_sessions: dict[int, CloneSession]
    on_digest: Callable[[str, tuple[int, ...]], None] | None
    on_packet_in: Callable[[bytes, dict[str, int]], None] | None
    on_transmit: Callable[[int, bytes], None] | None

    def __init__(self, *, device_id: int = 0, cpu_port: int | None = None) -> None:
        raise NotImplementedError

    @staticmethod
    def compile(source: str, filename: str = "program.p4", include_dirs: Sequence[str] = (),
                defines: Sequence[str] = ()) -> LoadedProgram:
        """Preprocess, parse, type-check and compile; raises CompileError."""
        raise NotImplementedError

    def commit(self, loaded: LoadedProgram) -> None:
        """Make ``loaded`` the running program; all table, extern, PRE state is reset."""
        raise NotImplementedError

    def receive(self, port: int, frame: bytes) -> None:
        """Process one frame arriving on ``port`` to completion (all replicas, clones,
        resubmits and recirculations), calling the callbacks as it goes. Without a
        program the frame is dropped."""
        raise NotImplementedError

    def packet_out(self, payload: bytes, metadata: dict[str, int]) -> None:
        """A P4Runtime PacketOut: the @controller_header("packet_out") header built from
        ``metadata`` is prepended and the frame enters the pipeline on the CPU port."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Counters for logs and tests: packets received / transmitted / dropped, ..."""
        raise NotImplementedError
