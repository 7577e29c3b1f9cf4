"""The interface between the core interpreter and an architecture (e.g. v1model).

The interpreter knows P4_16 and core.p4 (packet_in / packet_out, verify, NoAction);
everything else that is declared ``extern`` is provided by an :class:`Architecture`.
Binding happens once, when the program is compiled; the callables returned are what
runs per packet. :func:`softswitch.interp.compile_program` returns the concrete
:class:`CompiledProgram` (``softswitch.interp.Compiled``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from softswitch import ir
from softswitch.interp.tables import Table

__all__ = ["Architecture", "ExternFn", "CompiledProgram", "PacketTooShort"]

#: ``fn(ctx, args)``: ``args`` in parameter order; in / directionless arguments are
#: values, out / inout arguments are :class:`softswitch.interp.values.Cell`. Returns the
#: call's value (None for void).
ExternFn = Callable[[Any, list[Any]], Any]


class Architecture(Protocol):
    """What the interpreter asks of an architecture.

    ``ctx`` is the architecture's per-packet context object, passed unchanged from
    ``run_parser`` / ``run_control`` to every extern callable. The interpreter itself
    reads only ``ctx.packet_length`` (bytes, for direct counters) and
    ``ctx.now_ns`` (``time.monotonic_ns()`` at packet arrival, stored in
    ``TableEntry.last_hit_ns`` on a hit of a table with ``support_timeout = true``).
    """

    def instantiate(self, cp_name: str, inst: ir.Instance) -> object:
        """Create the state of extern instance ``inst`` (e.g. a register array).
        ``cp_name`` is its control-plane name (names.py)."""
        ...

    def bind_method(self, obj: object, call: ir.ExternMethodCall) -> ExternFn:
        """A callable for ``obj.method(...)`` at this call site (types are known)."""
        ...

    def bind_function(self, call: ir.ExternFunctionCall) -> ExternFn:
        """A callable for the extern function call at this call site."""
        ...


class PacketTooShort(Exception):
    """Raised inside the parser by extract / lookahead / advance past the end."""


class CompiledProgram(Protocol):
    """A program compiled to closures for one architecture.

    * ``tables``: control-plane table name -> Table (names.py naming; the main
      package's blocks are named after their declaration names).
    * ``instances``: control-plane name -> extern object (as returned by
      ``Architecture.instantiate``); includes direct counters.
    * ``actions``: control-plane action name -> its ActionDecl.
    * ``table_of_direct_counter``: control-plane direct counter name -> table name.
    """

    program: ir.Program
    tables: dict[str, Table]
    instances: dict[str, object]
    actions: dict[str, ir.ActionDecl]
    table_of_direct_counter: dict[str, str]

    def new_value(self, t: ir.Type) -> Any:
        """A zero-initialised value of type t (see values.zero_value)."""
        ...

    def run_parser(self, decl_name: str, args: list[Any], ctx: Any) -> str:
        """Run parser ``decl_name`` (a top-level block of main). ``args`` in parameter
        order: a :class:`softswitch.interp.packet.PacketIn` for the packet_in
        parameter, value objects for the others, mutated in place. Returns the parser
        error name: "NoError" on accept, the error on reject (PacketTooShort,
        NoMatch, StackOutOfBounds, HeaderTooShort, ParserTimeout, or one given to
        verify())."""
        ...

    def run_control(self, decl_name: str, args: list[Any], ctx: Any) -> None:
        """Run control ``decl_name``; args in parameter order (a
        :class:`softswitch.interp.packet.PacketOut` for a packet_out parameter),
        mutated in place. ``exit`` ends the control normally."""
        ...
