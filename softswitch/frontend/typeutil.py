"""Small helpers on IR types and values used by the type checker."""

from __future__ import annotations

from dataclasses import dataclass, field

from softswitch import ir

__all__ = ["type_str", "is_bits", "wrap", "fits", "parse_int_literal", "Sym", "Scope", "SemanticError",
           "MAX_WIDTH", "MAX_STACK_SIZE", "check_width"]

#: As p4c (``P4CConfiguration::maximumWidthSupported``): the widest bit<N> / int<N> / varbit<N>.
MAX_WIDTH = 2048
#: As p4c (``maximumArraySize``): the largest header stack.
MAX_STACK_SIZE = 256


class SemanticError(Exception):
    """One diagnostic at a position (collected by the elaborator)."""

    def __init__(self, pos: ir.Pos, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


def check_width(width: int, pos: ir.Pos, what: str) -> None:
    """Refuse a width p4c refuses (``what`` names the type or literal in the message)."""
    if width > MAX_WIDTH:
        raise SemanticError(pos, f"{what}: width {width} is too large; p4c and softswitch support "
                                 f"widths up to {MAX_WIDTH}")


def type_str(t: ir.Type | None) -> str:
    """The type as P4 source spells it (for messages)."""
    match t:
        case ir.BitT(w):
            return f"bit<{w}>"
        case ir.IntT(w):
            return f"int<{w}>"
        case ir.VarbitT(w):
            return f"varbit<{w}>"
        case ir.BoolT():
            return "bool"
        case ir.InfIntT():
            return "int"
        case ir.StringT():
            return "string"
        case ir.VoidT():
            return "void"
        case ir.ErrorT():
            return "error"
        case ir.MatchKindT():
            return "match_kind"
        case ir.HeaderT(name) | ir.StructT(name) | ir.HeaderUnionT(name) | ir.EnumT(name) \
                | ir.SerEnumT(name) | ir.ParserT(name) | ir.ControlT(name) | ir.PackageT(name) \
                | ir.TypeVarT(name):
            return name
        case ir.StackT(elem, size):
            return f"{type_str(elem)}[{size}]"
        case ir.ExternT(name, args):
            return f"{name}<{', '.join(type_str(a) for a in args)}>" if args else name
        case ir.TupleT(elems):
            return f"tuple<{', '.join(type_str(e) for e in elems)}>"
        case ir.TableResultT(table):
            return f"{table}.apply() result"
        case ir.DontCareT():
            return "_"
    return repr(t)


def is_bits(t: ir.Type) -> bool:
    return isinstance(t, (ir.BitT, ir.IntT))


def wrap(value: int, t: ir.Type) -> int:
    """``value`` reduced modulo the width of bit<N>/int<N> (signed for int<N>)."""
    if isinstance(t, ir.BitT):
        return value & ((1 << t.width) - 1)
    if isinstance(t, ir.IntT):
        v = value & ((1 << t.width) - 1)
        return v - (1 << t.width) if t.width and v >> (t.width - 1) else v
    return value


def fits(value: int, t: ir.Type) -> bool:
    if isinstance(t, ir.BitT):
        return 0 <= value < (1 << t.width)
    if isinstance(t, ir.IntT):
        return -(1 << (t.width - 1)) <= value < (1 << (t.width - 1)) if t.width else value == 0
    return True


def parse_int_literal(text: str) -> tuple[int, ir.Type]:
    """``8w5`` -> (5, bit<8>), ``4s3`` -> (3, int<4>), ``0x1F`` -> (31, int)."""
    s = text.replace("_", "")
    width: int | None = None
    signed = False
    for i, c in enumerate(s):
        if c in "ws" and i > 0 and s[:i].isdigit():
            width = int(s[:i])
            signed = c == "s"
            s = s[i + 1:]
            break
    base = 10
    if len(s) > 1 and s[0] == "0" and s[1] in "xXbBoOdD":
        base = {"x": 16, "b": 2, "o": 8, "d": 10}[s[1].lower()]
        s = s[2:]
    value = int(s, base)
    if width is None:
        return value, ir.InfIntT()
    return value, (ir.IntT(width) if signed else ir.BitT(width))


@dataclass(slots=True)
class Sym:
    """What a name means inside a block.

    kind: "var" (unique name, type, writable), "const" (value), "instance",
    "action", "table", "type".
    """

    kind: str
    name: str
    type: ir.Type | None = None
    writable: bool = True
    value: ir.Expr | None = None
    top_level: bool = False
    decl: object = None


@dataclass(slots=True)
class Scope:
    syms: dict[str, Sym] = field(default_factory=dict)
    parent: Scope | None = None

    def lookup(self, name: str) -> Sym | None:
        s: Scope | None = self
        while s is not None:
            if name in s.syms:
                return s.syms[name]
            s = s.parent
        return None

    def names(self) -> set[str]:
        out: set[str] = set()
        s: Scope | None = self
        while s is not None:
            out.update(s.syms)
            s = s.parent
        return out

    def child(self) -> Scope:
        return Scope({}, self)
