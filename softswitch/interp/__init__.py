"""The softswitch interpreter core: typed IR -> generated Python, packets, tables."""

from __future__ import annotations

from softswitch.interp.compiler import Compiled, CompileFailure, compile_program
from softswitch.interp.packet import PacketIn, PacketOut

__all__ = ["compile_program", "Compiled", "CompileFailure", "PacketIn", "PacketOut"]
