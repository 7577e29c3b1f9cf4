"""Type-specialised constructors and copiers for compound values.

``values.zero_value`` / ``values.copy_value`` walk the type / value with isinstance
checks per field; per packet that dominates (metadata structs with dozens of fields are
created and copied several times). Here each struct / header / stack type gets one
generated function that builds a zero value or copies a value field by field, knowing
at generation time which fields are scalars. Results are identical to values.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from softswitch import ir
from softswitch.interp.values import Header, HeaderUnion, Stack, Struct, copy_value, zero_value

__all__ = ["maker", "copier"]

_makers: dict[int, tuple[ir.Type, Callable[[], Any]]] = {}
_copiers: dict[int, tuple[ir.Type, Callable[[Any], Any]]] = {}


def _scalar(t: ir.Type) -> bool:
    return not isinstance(t, (ir.HeaderT, ir.StructT, ir.HeaderUnionT, ir.StackT, ir.TupleT))


def _gen(name: str, src: str, env: dict[str, Any]) -> Any:
    exec(compile(src, f"<fastvals {name}>", "exec"), env)
    return env[name]


class _Env:
    """Names bound into one generated function's globals."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"Header": Header, "Struct": Struct, "Stack": Stack}

    def bind(self, obj: Any, prefix: str) -> str:
        name = f"_{prefix}{len(self.env)}"
        self.env[name] = obj
        return name


def _make_expr(t: ir.Type, e: _Env) -> str:
    """An expression building a fresh zero value of ``t``: nested structs and headers
    inlined (one function call per top-level value instead of one per member)."""
    if isinstance(t, ir.HeaderT):
        proto = {n: zero_value(ft) for n, ft in t.fields}
        return f"Header({e.bind(t, 't')}, False, {e.bind(proto, 'p')}.copy())"
    if isinstance(t, ir.StructT):
        # declaration order: compound members hold a placeholder in the prototype and are
        # replaced in the dict display (a key already present keeps its position)
        proto_s = {n: (zero_value(ft) if _scalar(ft) else None) for n, ft in t.fields}
        subs = [f"{n!r}: {_make_expr(ft, e)}" for n, ft in t.fields if not _scalar(ft)]
        p = e.bind(proto_s, "p")
        d = f"{{**{p}, {', '.join(subs)}}}" if subs else f"{p}.copy()"
        return f"Struct({e.bind(t, 't')}, {d})"
    return f"{e.bind(maker(t), 'mk')}()"


def maker(t: ir.Type) -> Callable[[], Any]:
    """A function returning a fresh zero value of ``t`` (as values.zero_value)."""
    got = _makers.get(id(t))
    if got is not None and got[0] is t:
        return got[1]
    fn: Callable[[], Any]
    if isinstance(t, (ir.HeaderT, ir.StructT)):
        e = _Env()
        fn = _gen("make", f"def make():\n    return {_make_expr(t, e)}\n", e.env)
    elif isinstance(t, ir.StackT):
        em = maker(t.elem)
        size = t.size

        def fn() -> Any:
            return Stack(t, [em() for _ in range(size)], 0)
    else:
        def fn() -> Any:
            return zero_value(t)
    _makers[id(t)] = (t, fn)
    return fn


def _copy_lines(t: ir.Type, src: str, dst: str, e: _Env, indent: str, depth: int) -> list[str]:
    """Statements setting ``dst`` to a deep copy of the value in variable ``src`` of
    type ``t``: nested structs and headers inlined."""
    if isinstance(t, ir.HeaderT):
        if any(isinstance(ft, ir.VarbitT) for _, ft in t.fields):  # the varbit length too
            return [f"{indent}{dst} = Header({src}.type, {src}.valid, {src}.fields.copy(), {src}.vlen)"]
        return [f"{indent}{dst} = Header({src}.type, {src}.valid, {src}.fields.copy())"]
    if isinstance(t, ir.StructT):
        d = f"d{depth}"
        lines = [f"{indent}{d} = {src}.fields.copy()"]  # keeps declaration order
        for n, ft in t.fields:
            if _scalar(ft):
                continue
            x = f"x{depth}"
            lines.append(f"{indent}{x} = {d}[{n!r}]")
            lines += _copy_lines(ft, x, f"{d}[{n!r}]", e, indent, depth + 1)
        lines.append(f"{indent}{dst} = Struct({src}.type, {d})")
        return lines
    return [f"{indent}{dst} = {e.bind(copier(t), 'cp')}({src})"]


def copier(t: ir.Type) -> Callable[[Any], Any]:
    """A function returning a deep copy of a value of type ``t`` (as values.copy_value)."""
    got = _copiers.get(id(t))
    if got is not None and got[0] is t:
        return got[1]
    fn: Callable[[Any], Any]
    if isinstance(t, (ir.HeaderT, ir.StructT)):
        e = _Env()
        lines = ["def copy(v):", *_copy_lines(t, "v", "r", e, "    ", 0), "    return r"]
        fn = _gen("copy", "\n".join(lines) + "\n", e.env)
    elif isinstance(t, ir.StackT):
        ec = copier(t.elem)

        def fn(v: Any) -> Any:
            return Stack(v.type, [ec(e) for e in v.elems], v.next_index)
    else:
        fn = copy_value
    _copiers[id(t)] = (t, fn)
    return fn


_ = HeaderUnion
