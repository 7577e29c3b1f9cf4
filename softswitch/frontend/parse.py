"""Source text -> lark parse tree (the grammar is the data file p4.lark)."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from softswitch.frontend.diagnostics import Diagnostic, FrontendError
from softswitch.frontend.lexer import P4Lexer, ScanError, would_shift
from softswitch.frontend.preprocess import LineMap

__all__ = ["parser", "parse_text"]

_GRAMMAR = Path(__file__).with_name("p4.lark")


@functools.cache
def parser() -> Lark:
    """The LALR parser, built once per process (about 0.2 s)."""
    return Lark(_GRAMMAR.read_text(), parser="lalr", lexer=P4Lexer, propagate_positions=True,
                maybe_placeholders=False)


def _describe(terminals: set[str] | frozenset[str], lark: Lark) -> str:
    by_name = {t.name: t for t in lark.terminals}
    pretty: set[str] = set()
    for name in terminals:
        t = by_name.get(name)
        if t is not None and t.pattern.type == "str":
            pretty.add(f"'{t.pattern.value}'")
        else:
            pretty.add({"NAME": "identifier", "TYPE_NAME": "type name", "INTEGER": "integer",
                        "STRING_LIT": "string", "ANNOTATION": "annotation", "TARG_LT": "'<'",
                        "EQOP": "'=='", "RELOP": "'<'", "SHIFTOP": "'<<'", "ADDOP": "'+'",
                        "MULOP": "'*'", "PREFIXOP": "unary operator", "ANNO_BODY": "'('",
                        "$END": "end of file"}.get(name, name.lower()))
    items = sorted(pretty)
    if len(items) > 12:
        items = [*items[:12], "..."]
    return ", ".join(items)


def parse_text(text: str, lines: LineMap) -> Tree:
    """Parse preprocessed text; syntax errors become a FrontendError at the original position."""
    lark = parser()
    try:
        return lark.parse(text)
    except ScanError as e:
        raise FrontendError([Diagnostic(lines.pos(e.line, e.col), "error", str(e))]) from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            what = "unexpected end of file"
        else:
            what = f"syntax error, unexpected '{tok.value}'"
        expected = set(e.expected)
        state = getattr(e, "state", None)
        if state is not None and hasattr(state, "state_stack"):
            # LALR look-ahead sets are merged; keep what the parser would really shift.
            real = {t for t in expected if would_shift(state, t)}
            expected = real or expected
        msg = f"{what}; expected {_describe(expected, lark)}"
        line = e.line if isinstance(e.line, int) and e.line > 0 else 1
        col = e.column if isinstance(e.column, int) and e.column > 0 else 1
        raise FrontendError([Diagnostic(lines.pos(line, col), "error", msg)]) from None
    except (UnexpectedCharacters, UnexpectedEOF, UnexpectedInput) as e:
        line = getattr(e, "line", 1) or 1
        col = getattr(e, "column", 1) or 1
        raise FrontendError([Diagnostic(lines.pos(line, col), "error", f"syntax error: {e}")]) from None
