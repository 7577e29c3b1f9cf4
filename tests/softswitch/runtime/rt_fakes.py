"""A fake device and a hand-built program for unit tests of the P4Runtime server.

The program (IR built by hand, real table model and extern state):

* ``MyIngress.fwd``: exact ``hdr.eth.dst`` (48) -> ``set_port(port: 9)`` / ``drop``,
  default NoAction, size 4.
* ``MyIngress.acl``: ternary ``hdr.ip.src`` (32) + range ``hdr.tcp.dport`` (16), idle
  timeout, direct counter ``MyIngress.acl_ctr``, ``allow`` / ``deny``, size 8.
* ``MyIngress.pkt_ctr`` counter(8, packets_and_bytes), ``MyIngress.reg`` register<bit<32>>(4).
* digest ``learn_t { mac: 48, port: 9 }``; controller headers packet_in / packet_out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from softswitch import ir
from softswitch.arch.externs import CounterArray, DirectCounter, RegisterArray
from softswitch.device import CloneSession, CompileError, LoadedProgram, Replica
from softswitch.interp.tables import Table

P = ir.NOPOS
B = ir.BitT
CT = ir.EnumT("CounterType", ("packets", "bytes", "packets_and_bytes"))
LEARN_T = ir.StructT("learn_t", (("mac", B(48)), ("port", B(9))))
PKT_IN = ir.HeaderT("packet_in_header_t", (("ingress_port", B(9)), ("_pad", B(7))),
                    (ir.Annotation("controller_header", '"packet_in"', ("packet_in",)),))
PKT_OUT = ir.HeaderT("packet_out_header_t", (("egress_port", B(9)), ("_pad", B(7))),
                     (ir.Annotation("controller_header", '"packet_out"', ("packet_out",)),))

#: the source text the fake compiler accepts; anything else fails to compile
SOURCE = "// fake program\n"


def _action(name: str, *params: tuple[str, int]) -> ir.ActionDecl:
    return ir.ActionDecl(name, tuple(ir.Param(n, "", B(w)) for n, w in params), ir.Block(P, ()), (), name)


def _key(text: str, width: int, kind: str) -> ir.TableKey:
    return ir.TableKey(ir.VarRef(P, B(width), text), kind, text)


def _apply(table: str) -> ir.Stmt:
    return ir.CallStmt(P, ir.TableApply(P, ir.TableResultT(table), table))


NOACTION = ir.ActionDecl("NoAction", (), ir.Block(P, ()), (), "NoAction")


def build_ir(variant: int = 0) -> ir.Program:
    """The program; ``variant`` 1 renames table fwd (a different program, other ids)."""
    fwd = ir.TableDecl("fwd", (_key("hdr.eth.dst", 48, "exact"),),
                       (ir.ActionRef("set_port"), ir.ActionRef("drop")),
                       ir.DefaultAction("NoAction", True, (), False), size=4,
                       original_name="fwd" if variant == 0 else "fwd2")
    acl = ir.TableDecl("acl", (_key("hdr.ip.src", 32, "ternary"), _key("hdr.tcp.dport", 16, "range")),
                       (ir.ActionRef("allow"), ir.ActionRef("deny")),
                       ir.DefaultAction("deny", False, (), False), size=8, support_timeout=True,
                       direct_counter="acl_ctr", original_name="acl")
    insts = (
        ir.Instance("pkt_ctr", ir.ExternT("counter"),
                    (ir.Const(P, B(32), 8), ir.EnumConst(P, CT, "packets_and_bytes")), (), "pkt_ctr"),
        ir.Instance("acl_ctr", ir.ExternT("direct_counter"), (ir.EnumConst(P, CT, "packets"),), (), "acl_ctr"),
        ir.Instance("reg", ir.ExternT("register", (B(32),)), (ir.Const(P, B(32), 4),), (), "reg"),
    )
    digest = ir.CallStmt(P, ir.ExternFunctionCall(
        P, ir.VoidT(), "digest",
        (ir.Arg("in", ir.Const(P, B(32), 1)), ir.Arg("in", ir.VarRef(P, LEARN_T, "d"))), (LEARN_T,)))
    ing = ir.ControlDecl("MyIngress", (), (), insts,
                         (_action("set_port", ("port", 9)), _action("drop"), _action("allow"), _action("deny")),
                         (fwd, acl), ir.Block(P, (digest, _apply("fwd"), _apply("acl"))))
    return ir.Program(
        types={"learn_t": LEARN_T, "packet_in_header_t": PKT_IN, "packet_out_header_t": PKT_OUT},
        constants={}, errors=("NoError",), match_kinds=("exact", "ternary", "lpm", "range", "optional"),
        externs={}, extern_functions={}, functions={}, actions={"NoAction": NOACTION}, parsers={},
        controls={"MyIngress": ing}, packages={}, instances={},
        main=ir.MainInstance("V1Switch", ("MyIngress",)))


@dataclass
class FakeCompiled:
    program: ir.Program
    tables: dict[str, Table] = field(default_factory=dict)
    instances: dict[str, object] = field(default_factory=dict)
    actions: dict[str, ir.ActionDecl] = field(default_factory=dict)
    table_of_direct_counter: dict[str, str] = field(default_factory=dict)

    def new_value(self, t: ir.Type) -> Any:
        raise NotImplementedError

    def run_parser(self, decl_name: str, args: list[Any], ctx: Any) -> str:
        raise NotImplementedError

    def run_control(self, decl_name: str, args: list[Any], ctx: Any) -> None:
        raise NotImplementedError


def build_loaded(variant: int = 0) -> LoadedProgram:
    prog = build_ir(variant)
    ing = prog.controls["MyIngress"]
    fwd_decl, acl_decl = ing.tables
    fwd_name = "MyIngress.fwd" if variant == 0 else "MyIngress.fwd2"
    c = FakeCompiled(prog)
    c.tables[fwd_name] = Table(fwd_name, fwd_decl, (48,),
                               {"MyIngress.set_port": (9,), "MyIngress.drop": (), "NoAction": ()},
                               "NoAction", default_only=("NoAction",))
    c.tables["MyIngress.acl"] = Table("MyIngress.acl", acl_decl, (32, 16),
                                      {"MyIngress.allow": (), "MyIngress.deny": ()}, "MyIngress.deny")
    c.instances["MyIngress.pkt_ctr"] = CounterArray("MyIngress.pkt_ctr", 8, "packets_and_bytes")
    c.instances["MyIngress.acl_ctr"] = DirectCounter("MyIngress.acl_ctr", "packets", "MyIngress.acl")
    c.instances["MyIngress.reg"] = RegisterArray("MyIngress.reg", 4, 32)
    c.table_of_direct_counter["MyIngress.acl_ctr"] = "MyIngress.acl"
    return LoadedProgram(SOURCE, "program.p4", prog, c,  # type: ignore[arg-type]
                         packet_in_header=[("ingress_port", 9), ("_pad", 7)],
                         packet_out_header=[("egress_port", 9), ("_pad", 7)],
                         digests={"learn_t": [("mac", 48), ("port", 9)]})


class FakeDevice:
    """Just enough of softswitch.device.Device for the server."""

    def __init__(self, *, device_id: int = 0, cpu_port: int | None = 64) -> None:
        self.device_id = device_id
        self.cpu_port = cpu_port
        self.program: LoadedProgram | None = None
        self.multicast_groups: dict[int, list[Replica]] = {}
        self.clone_sessions: dict[int, CloneSession] = {}
        self.on_digest: Callable[[str, tuple[int, ...]], None] | None = None
        self.on_packet_in: Callable[[bytes, dict[str, int]], None] | None = None
        self.on_transmit: Callable[[int, bytes], None] | None = None
        self.packets_out: list[tuple[bytes, dict[str, int]]] = []
        self.commits = 0

    @staticmethod
    def compile(source: str, filename: str = "program.p4", include_dirs: Sequence[str] = (),
                defines: Sequence[str] = ()) -> LoadedProgram:
        if source == SOURCE:
            return build_loaded()
        if source == SOURCE + "// variant\n":
            return build_loaded(1)
        raise CompileError(f"{filename}:1:1: error: fake compiler accepts only the fake program")

    def commit(self, loaded: LoadedProgram) -> None:
        self.program = loaded
        self.multicast_groups.clear()
        self.clone_sessions.clear()
        for t in loaded.compiled.tables.values():
            t.clear()
        self.commits += 1

    def receive(self, port: int, frame: bytes) -> None:
        pass

    def packet_out(self, payload: bytes, metadata: dict[str, int]) -> None:
        self.packets_out.append((payload, metadata))

    def stats(self) -> dict[str, Any]:
        return {}
