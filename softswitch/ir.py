"""Typed intermediate representation of a P4_16 program.

This module is the contract between the frontend (which builds it from source and
type-checks it) and its consumers (the interpreter, the P4Info generator, the
architecture). Nothing from lark appears here.

Invariants the frontend guarantees for a program it returns:

* Every ``Expr`` carries its concrete ``type``. No ``InfIntT`` survives in a runtime
  expression: integer literals get the width their context demands (``Cast`` nodes
  are inserted for implicit conversions), and both operands of a binary arithmetic,
  bitwise or comparison operator have the same type (shifts excepted: the right
  operand of ``<<``/``>>`` may have any unsigned type).
* Compile-time constants (``const`` declarations, enum members of serializable enums,
  constant expressions) are folded into ``Const`` nodes.
* Names are resolved: a ``VarRef`` names a parameter or a local variable of the
  enclosing parser/control/action/function. Locals are renamed so that names are
  unique inside one parser or control (including its actions), so a flat frame per
  block instance suffices. ``original_name`` keeps the source spelling.
* Calls are classified (``ExternMethodCall``, ``ExternFunctionCall``,
  ``BuiltinMethodCall``, ``ActionCall``, ``TableApply``, ``SubApply``, ``FunctionCall``)
  and their arguments are in parameter order with default values filled in and the
  callee parameter's direction attached.
* Select keysets and table const-entry keysets are folded to integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Pos", "NOPOS", "Annotation",
    # types
    "Type", "BitT", "IntT", "VarbitT", "BoolT", "InfIntT", "StringT", "VoidT", "ErrorT",
    "MatchKindT", "HeaderT", "StructT", "HeaderUnionT", "StackT", "EnumT", "SerEnumT",
    "ExternT", "TupleT", "TableResultT", "ParserT", "ControlT", "PackageT", "TypeVarT",
    "DontCareT",
    # expressions
    "Expr", "Const", "EnumConst", "ErrorConst", "StrConst", "VarRef", "InstanceRef",
    "Member", "Index", "Slice", "Unary", "Binary", "Cast", "Mux", "ListExpr", "StructExpr",
    "DontCare", "Arg", "ExternMethodCall", "ExternFunctionCall", "BuiltinMethodCall",
    "ActionCall", "TableApply", "SubApply", "FunctionCall",
    # statements
    "Stmt", "Assign", "CallStmt", "If", "Block", "VarDecl", "Exit", "Return", "SwitchCase",
    "Switch", "Empty",
    # keysets / parser
    "KeySet", "KsExact", "KsMask", "KsRange", "KsDefault", "SelectCase", "Select", "Goto",
    "Transition", "ParserState",
    # declarations
    "Param", "ActionDecl", "TableKey", "ActionRef", "DefaultAction", "ConstEntry",
    "TableDecl", "Instance", "MethodSig", "ExternDecl", "FunctionDecl", "ParserDecl",
    "ControlDecl", "PackageDecl", "MainInstance", "Program",
]


@dataclass(frozen=True, slots=True)
class Pos:
    """A source position after preprocessing, mapped back through #line markers."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOPOS = Pos("<builtin>", 0, 0)


@dataclass(frozen=True, slots=True)
class Annotation:
    """``@name(body)``. ``body`` is the raw text between the parentheses (``""`` when
    absent); ``args`` holds the parsed arguments when they are literals: strings as
    ``str`` (without quotes), integers as ``int``."""

    name: str
    body: str = ""
    args: tuple[str | int, ...] = ()
    pos: Pos = NOPOS


def annotation(annotations: tuple[Annotation, ...], name: str) -> Annotation | None:
    """The first annotation called ``name``, or None."""
    for a in annotations:
        if a.name == name:
            return a
    return None


# --------------------------------------------------------------------------- types


class Type:
    """Base of all types. Types are frozen dataclasses and compare structurally."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class BitT(Type):
    width: int


@dataclass(frozen=True, slots=True)
class IntT(Type):
    width: int


@dataclass(frozen=True, slots=True)
class VarbitT(Type):
    max_width: int


@dataclass(frozen=True, slots=True)
class BoolT(Type):
    pass


@dataclass(frozen=True, slots=True)
class InfIntT(Type):
    """Arbitrary-precision compile-time integer; only in constant contexts."""


@dataclass(frozen=True, slots=True)
class StringT(Type):
    pass


@dataclass(frozen=True, slots=True)
class VoidT(Type):
    pass


@dataclass(frozen=True, slots=True)
class ErrorT(Type):
    pass


@dataclass(frozen=True, slots=True)
class MatchKindT(Type):
    pass


@dataclass(frozen=True, slots=True)
class DontCareT(Type):
    pass


@dataclass(frozen=True, slots=True)
class HeaderT(Type):
    name: str
    fields: tuple[tuple[str, Type], ...]
    annotations: tuple[Annotation, ...] = ()
    # Per-field annotations (e.g. @field_list(1)), parallel to ``fields``; not part of
    # the type's identity.
    field_annotations: tuple[tuple[Annotation, ...], ...] = field(default=(), compare=False)

    def field_type(self, name: str) -> Type:
        for n, t in self.fields:
            if n == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class StructT(Type):
    name: str
    fields: tuple[tuple[str, Type], ...]
    annotations: tuple[Annotation, ...] = ()
    # Per-field annotations (e.g. @field_list(1)), parallel to ``fields``; not part of
    # the type's identity.
    field_annotations: tuple[tuple[Annotation, ...], ...] = field(default=(), compare=False)

    def field_type(self, name: str) -> Type:
        for n, t in self.fields:
            if n == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class HeaderUnionT(Type):
    name: str
    fields: tuple[tuple[str, Type], ...]
    annotations: tuple[Annotation, ...] = ()
    # Per-field annotations (e.g. @field_list(1)), parallel to ``fields``; not part of
    # the type's identity.
    field_annotations: tuple[tuple[Annotation, ...], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class StackT(Type):
    elem: Type  # a HeaderT (or HeaderUnionT)
    size: int


@dataclass(frozen=True, slots=True)
class EnumT(Type):
    """A non-serializable enum; runtime values are the member names (str)."""

    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SerEnumT(Type):
    """``enum bit<W> E { A = 1, ... }``; runtime values are ints of the underlying type."""

    name: str
    underlying: Type  # BitT or IntT
    members: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ExternT(Type):
    """An extern object type, e.g. ``register<bit<32>>`` -> ExternT("register", (BitT(32),))."""

    name: str
    type_args: tuple[Type, ...] = ()


@dataclass(frozen=True, slots=True)
class TupleT(Type):
    """``tuple<...>`` and the type of a list expression that is not a struct/header."""

    elems: tuple[Type, ...]


@dataclass(frozen=True, slots=True)
class TableResultT(Type):
    """The result of ``t.apply()``: members ``hit``, ``miss`` (bool) and ``action_run``."""

    table: str  # local (unique in its control) table declaration name


@dataclass(frozen=True, slots=True)
class ParserT(Type):
    name: str


@dataclass(frozen=True, slots=True)
class ControlT(Type):
    name: str


@dataclass(frozen=True, slots=True)
class PackageT(Type):
    name: str


@dataclass(frozen=True, slots=True)
class TypeVarT(Type):
    """An unbound type variable; appears only in extern/package declarations."""

    name: str


# ----------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Expr:
    pos: Pos
    type: Type


@dataclass(frozen=True, slots=True)
class Const(Expr):
    """bit/int value (a Python int, already in range for the type: int<N> as a signed
    value) or bool."""

    value: int | bool


@dataclass(frozen=True, slots=True)
class EnumConst(Expr):
    """A member of a non-serializable enum (``type`` is an EnumT)."""

    member: str


@dataclass(frozen=True, slots=True)
class ErrorConst(Expr):
    """``error.Name``; runtime value is the name string."""

    name: str


@dataclass(frozen=True, slots=True)
class StrConst(Expr):
    value: str


@dataclass(frozen=True, slots=True)
class VarRef(Expr):
    """A parameter or local variable of the enclosing block (unique name)."""

    name: str
    original_name: str = ""


@dataclass(frozen=True, slots=True)
class InstanceRef(Expr):
    """An extern / parser / control instance declared in the enclosing block's locals
    (``name`` is the local name) or at top level (``top_level`` True)."""

    name: str
    top_level: bool = False


@dataclass(frozen=True, slots=True)
class Member(Expr):
    """Field of a header / struct / union, or on a header stack one of ``next``,
    ``last``, ``lastIndex``, ``size``; on a TableApply one of ``hit``, ``miss``,
    ``action_run``."""

    expr: Expr
    member: str


@dataclass(frozen=True, slots=True)
class Index(Expr):
    """Header stack element ``stack[i]``; ``index`` has a BitT/IntT type (or is a Const)."""

    expr: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Slice(Expr):
    """``expr[hi:lo]`` with constant bounds; type is BitT(hi - lo + 1)."""

    expr: Expr
    hi: int
    lo: int


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    op: str  # "-", "~", "!"
    expr: Expr


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    """op is one of: + - * / % |+| |-| << >> & | ^ ++ == != < <= > >= && ||"""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Cast(Expr):
    """Explicit or inserted conversion of ``expr`` to ``type``."""

    expr: Expr


@dataclass(frozen=True, slots=True)
class Mux(Expr):
    cond: Expr
    then: Expr
    else_: Expr


@dataclass(frozen=True, slots=True)
class ListExpr(Expr):
    """``{a, b, ...}`` whose type is a TupleT (e.g. a hash input or a digest field list
    given as a list)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class StructExpr(Expr):
    """A struct/header value built from a list or ``{f = e, ...}`` expression whose
    target type is a StructT or HeaderT (a header built this way is valid)."""

    fields: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True)
class DontCare(Expr):
    """``_`` as an out argument (the value written is discarded)."""


@dataclass(frozen=True, slots=True)
class Arg:
    """An argument, in callee parameter order. ``direction`` is the callee parameter's:
    "in", "out", "inout" or "" (directionless: an action parameter bound by the control
    plane never appears here; a directionless extern/function argument behaves as "in")."""

    direction: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class ExternMethodCall(Expr):
    """``target.method(args)`` on an extern object. ``target`` is an InstanceRef or a
    VarRef (e.g. the ``packet_in`` parameter of a parser). ``extern`` is the extern type
    name (e.g. "packet_in", "register", "counter", "direct_counter")."""

    target: Expr
    extern: str
    method: str
    args: tuple[Arg, ...]
    type_args: tuple[Type, ...] = ()


@dataclass(frozen=True, slots=True)
class ExternFunctionCall(Expr):
    """A call of a top-level ``extern`` function, e.g. mark_to_drop, hash, digest,
    verify_checksum, clone, random, log_msg, verify (core)."""

    name: str
    args: tuple[Arg, ...]
    type_args: tuple[Type, ...] = ()


@dataclass(frozen=True, slots=True)
class BuiltinMethodCall(Expr):
    """Language built-ins on headers / stacks / unions: isValid, setValid, setInvalid,
    push_front(n), pop_front(n), minSizeInBits, minSizeInBytes (the last two are
    folded to Const by the frontend when possible)."""

    target: Expr
    method: str
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True, slots=True)
class ActionCall(Expr):
    """Direct call of an action from a control body or another action. ``action`` is the
    unique local name of the action (or the top-level action name when ``top_level``)."""

    action: str
    args: tuple[Arg, ...]
    top_level: bool = False


@dataclass(frozen=True, slots=True)
class TableApply(Expr):
    """``t.apply()``; type is TableResultT."""

    table: str


@dataclass(frozen=True, slots=True)
class SubApply(Expr):
    """``inst.apply(args)`` of a parser or control instance declared in the enclosing
    block's locals."""

    instance: str
    args: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class FunctionCall(Expr):
    """Call of a top-level P4 function declaration."""

    function: str
    args: tuple[Arg, ...]


# ------------------------------------------------------------------------ statements


@dataclass(frozen=True, slots=True)
class Stmt:
    pos: Pos


@dataclass(frozen=True, slots=True)
class Assign(Stmt):
    """lhs is an l-value: VarRef, Member, Index, Slice of these (never a Const)."""

    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class CallStmt(Stmt):
    call: Expr  # one of the call expressions


@dataclass(frozen=True, slots=True)
class Block(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class If(Stmt):
    cond: Expr
    then: Stmt
    else_: Stmt | None = None


@dataclass(frozen=True, slots=True)
class VarDecl(Stmt):
    """A local variable. Without ``init`` BMv2 semantics apply: bit/int read 0, bool
    false, headers invalid (with zero fields)."""

    name: str
    type: Type
    init: Expr | None = None
    original_name: str = ""


@dataclass(frozen=True, slots=True)
class Exit(Stmt):
    pass


@dataclass(frozen=True, slots=True)
class Return(Stmt):
    value: Expr | None = None


@dataclass(frozen=True, slots=True)
class SwitchCase:
    """``labels`` are action names (unique local or top-level names, for a switch on
    ``action_run``) or Const expressions (for a switch on a value), or the string
    "default". ``body`` None means fall through to the next case's body."""

    labels: tuple[str | Expr, ...]
    body: Block | None
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class Switch(Stmt):
    """``switch (t.apply().action_run)`` (expr is a Member of a TableApply) or
    ``switch (value)``."""

    expr: Expr
    cases: tuple[SwitchCase, ...]


@dataclass(frozen=True, slots=True)
class Empty(Stmt):
    pass


# -------------------------------------------------------------------- parser parts


@dataclass(frozen=True, slots=True)
class KsExact:
    value: int | bool | str  # str for error / enum members


@dataclass(frozen=True, slots=True)
class KsMask:
    value: int
    mask: int


@dataclass(frozen=True, slots=True)
class KsRange:
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class KsDefault:
    """``default`` or ``_``."""


KeySet = KsExact | KsMask | KsRange | KsDefault


@dataclass(frozen=True, slots=True)
class SelectCase:
    """One keyset per select key (a single ``default`` covers all keys: the frontend
    expands it to one KsDefault per key)."""

    keysets: tuple[KeySet, ...]
    state: str
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class Select:
    keys: tuple[Expr, ...]
    cases: tuple[SelectCase, ...]
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class Goto:
    state: str  # a state name, "accept" or "reject"
    pos: Pos = NOPOS


Transition = Select | Goto


@dataclass(frozen=True, slots=True)
class ParserState:
    name: str
    stmts: tuple[Stmt, ...]
    transition: Transition  # a state without a transition statement gets Goto("reject")
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


# --------------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    direction: str  # "in", "out", "inout" or "" (directionless)
    type: Type
    annotations: tuple[Annotation, ...] = ()
    default: Expr | None = None
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class ActionDecl:
    """``name`` is unique inside its control (or top-level). ``original_name`` is the
    source name; control-plane names derive from it and the @name annotation."""

    name: str
    params: tuple[Param, ...]
    body: Block
    annotations: tuple[Annotation, ...] = ()
    original_name: str = ""
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class TableKey:
    """One key field. ``source_text`` is the key expression as p4c prints it (e.g.
    ``hdr.ipv4.dstAddr`` or ``hdr.ipv4.dstAddr[31:24]``); control-plane name is the
    @name annotation when present, else ``source_text``."""

    expr: Expr
    match_kind: str  # "exact", "ternary", "lpm", "range", "optional", "selector"
    source_text: str
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class ActionRef:
    """An entry of a table's ``actions`` list. ``action`` is the unique local name
    (or top-level name when ``top_level``). Annotations such as @tableonly,
    @defaultonly live here."""

    action: str
    top_level: bool = False
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class DefaultAction:
    """``default_action = a(args)``; args are control-plane values folded to ints."""

    action: str
    top_level: bool
    args: tuple[int, ...]
    is_const: bool
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class ConstEntry:
    """An entry of ``entries = { ... }``; one keyset per key field. ``priority`` is the
    explicit ``priority = N`` if any, else None (the consumer assigns priorities by
    order as p4c does)."""

    keysets: tuple[KeySet, ...]
    action: str
    top_level: bool
    args: tuple[int, ...]
    priority: int | None = None
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class TableDecl:
    name: str
    keys: tuple[TableKey, ...]
    actions: tuple[ActionRef, ...]
    default_action: DefaultAction  # NoAction when the source has none
    entries: tuple[ConstEntry, ...] | None = None
    entries_const: bool = True
    size: int | None = None
    support_timeout: bool = False
    direct_counter: str | None = None  # local instance name from ``counters = ...``
    direct_meter: str | None = None  # local instance name from ``meters = ...``
    implementation: str | None = None
    other_properties: tuple[tuple[str, Expr], ...] = ()
    annotations: tuple[Annotation, ...] = ()
    original_name: str = ""
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class Instance:
    """``T(args) name;`` inside a parser/control or at top level. ``type`` is an
    ExternT, ParserT or ControlT; ``ctor_args`` are constant-folded (ints, bools,
    strings, enum members as EnumConst, ...)."""

    name: str
    type: Type
    ctor_args: tuple[Expr, ...]
    annotations: tuple[Annotation, ...] = ()
    original_name: str = ""
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class MethodSig:
    name: str
    params: tuple[Param, ...]
    return_type: Type
    type_params: tuple[str, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class ExternDecl:
    """An extern object type (``constructors`` are MethodSigs named after the type)."""

    name: str
    type_params: tuple[str, ...]
    constructors: tuple[MethodSig, ...]
    methods: tuple[MethodSig, ...]
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class FunctionDecl:
    name: str
    return_type: Type
    params: tuple[Param, ...]
    body: Block
    type_params: tuple[str, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class ParserDecl:
    name: str
    params: tuple[Param, ...]
    ctor_params: tuple[Param, ...]
    locals: tuple[VarDecl | Instance, ...]
    states: tuple[ParserState, ...]  # "start" first; accept/reject are implicit
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class ControlDecl:
    name: str
    params: tuple[Param, ...]
    ctor_params: tuple[Param, ...]
    locals: tuple[VarDecl | Instance, ...]
    actions: tuple[ActionDecl, ...]
    tables: tuple[TableDecl, ...]
    apply: Block
    annotations: tuple[Annotation, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class PackageDecl:
    name: str
    params: tuple[Param, ...]
    type_params: tuple[str, ...] = ()
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class MainInstance:
    """The top-level package instantiation, e.g. ``V1Switch(P(), VC(), I(), E(), CC(), D()) main;``.
    ``args`` are the names of the parser/control declarations (each instantiated once,
    anonymously, as p4c does for ``Name()`` arguments) in package-parameter order."""

    package: str
    args: tuple[str, ...]
    name: str = "main"
    pos: Pos = NOPOS


@dataclass(frozen=True, slots=True)
class Program:
    """A whole, type-checked program. Declarations from core.p4 / v1model.p4 are
    included (``externs``, ``extern_functions``, ``packages``, ``errors``,
    ``match_kinds``)."""

    types: dict[str, Type]  # named types: headers, structs, unions, enums, typedefs
    constants: dict[str, Const | EnumConst | ErrorConst | StrConst]
    errors: tuple[str, ...]  # all error members in declaration order (NoError first)
    match_kinds: tuple[str, ...]
    externs: dict[str, ExternDecl]
    extern_functions: dict[str, tuple[MethodSig, ...]]  # overloads
    functions: dict[str, FunctionDecl]
    actions: dict[str, ActionDecl]  # top-level actions (NoAction, ...)
    parsers: dict[str, ParserDecl]
    controls: dict[str, ControlDecl]
    packages: dict[str, PackageDecl]
    instances: dict[str, Instance] = field(default_factory=dict)  # top-level instances
    main: MainInstance | None = None
    source_files: tuple[str, ...] = ()
