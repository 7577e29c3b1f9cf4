"""The state and the cross-module methods the Elaborator's mixins share.

Each mixin (exprs, calls, blocks) derives from :class:`Host`, so that the type
checker knows every attribute and method the others provide; the real methods
come first in the Elaborator's MRO and override these stubs.
"""

from __future__ import annotations

from typing import Any

from lark import Tree

from softswitch import ir
from softswitch.frontend.diagnostics import Diagnostic
from softswitch.frontend.preprocess import LineMap
from softswitch.frontend.typeutil import Scope

__all__ = ["Host", "RawArg"]

#: (argument name or None, parse tree or "_" for don't-care, position)
RawArg = tuple[str | None, Any, ir.Pos]


class Host:
    lines: LineMap
    diags: list[Diagnostic]
    cur_pos: ir.Pos
    types: dict[str, ir.Type]
    errors: list[str]
    match_kinds: list[str]
    externs: dict[str, ir.ExternDecl]
    extern_functions: dict[str, tuple[ir.MethodSig, ...]]
    functions: dict[str, ir.FunctionDecl]
    parsers: dict[str, ir.ParserDecl]
    controls: dict[str, ir.ControlDecl]
    globals: Scope
    tparams: set[str]
    # per parser/control/function being elaborated
    used: set[str]
    action_param_names: set[str]
    readonly: set[str]
    table_decls: dict[str, ir.TableDecl]
    table_applied: dict[str, ir.Pos]
    return_type: ir.Type | None
    context: str  # "parser", "control", "action" or "function": what the statements are in

    def _stub(self) -> Any:
        raise NotImplementedError(type(self).__name__)

    # exprs.py
    def pos(self, node: Any) -> ir.Pos:
        return self._stub()  # type: ignore[no-any-return]

    def name_of(self, t: Any) -> str:
        return self._stub()  # type: ignore[no-any-return]

    def expr(self, t: Any, sc: Scope, want: ir.Type | None = None, what: str = "expression") -> ir.Expr:
        return self._stub()  # type: ignore[no-any-return]

    def coerce(self, e: ir.Expr, want: ir.Type, what: str = "expression") -> ir.Expr:
        return self._stub()  # type: ignore[no-any-return]

    def concrete(self, e: ir.Expr, what: str) -> ir.Expr:
        return self._stub()  # type: ignore[no-any-return]

    def const_int(self, t: Any, sc: Scope, what: str) -> int:
        return self._stub()  # type: ignore[no-any-return]

    # calls.py
    def call(self, t: Tree, sc: Scope) -> ir.Expr:
        return self._stub()  # type: ignore[no-any-return]

    def raw_args(self, t: Tree | None) -> list[RawArg]:
        return self._stub()  # type: ignore[no-any-return]

    def bind(self, params: tuple[ir.Param, ...], args: list[RawArg], sc: Scope, p: ir.Pos,
             env: dict[str, ir.Type], what: str) -> tuple[ir.Arg, ...]:
        return self._stub()  # type: ignore[no-any-return]

    def overload(self, sigs: tuple[ir.MethodSig, ...], args: list[RawArg], sc: Scope, p: ir.Pos,
                 targs: tuple[ir.Type, ...], env0: dict[str, ir.Type], what: str
                 ) -> tuple[ir.MethodSig, tuple[ir.Arg, ...], dict[str, ir.Type]]:
        return self._stub()  # type: ignore[no-any-return]

    def check_lvalue(self, e: ir.Expr, what: str) -> None:
        self._stub()

    def type_arg(self, t: Any) -> ir.Type:
        return self._stub()  # type: ignore[no-any-return]

    # elaborate.py
    def type_ref(self, t: Any) -> ir.Type:
        return self._stub()  # type: ignore[no-any-return]

    def type_params(self, t: Tree) -> tuple[str, ...]:
        return self._stub()  # type: ignore[no-any-return]

    def params(self, t: Tree | None) -> tuple[ir.Param, ...]:
        return self._stub()  # type: ignore[no-any-return]

    def annos(self, t: Tree) -> tuple[ir.Annotation, ...]:
        return self._stub()  # type: ignore[no-any-return]

    def parts(self, t: Tree) -> list[Any]:
        return self._stub()  # type: ignore[no-any-return]

    def make_instance(self, ty: ir.Type, args_t: Tree, name: str, annotations: tuple[ir.Annotation, ...],
                      p: ir.Pos, sc: Scope, original: str) -> ir.Instance:
        return self._stub()  # type: ignore[no-any-return]
