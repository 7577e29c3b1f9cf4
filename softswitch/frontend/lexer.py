"""The P4_16 lexer, driven by the LALR parser's state (as p4c's lexer is by its symbol table).

Tokenising happens once (:func:`scan`); classification happens while lark parses
(:class:`P4Lexer`), because several decisions depend on what the parser can accept:

* an identifier is a keyword where the parser takes that keyword, else a TYPE_NAME
  or NAME; where both are possible, whether it is a type name at that point decides
  (a pre-pass over the tokens, :func:`type_flags`, plays p4c's scoped type table:
  declared types from their declaration on, type parameters only inside their
  declaration);
* ``-`` is ADDOP after an operand and PREFIXOP before one, ``<`` a RELOP or a type
  bracket, and so on;
* ``<`` opening explicit type arguments of a generic type or call becomes TARG_LT,
  and ``>`` ``>`` outside type brackets becomes one SHIFTOP ``>>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lark import Token
from lark.lexer import Lexer, LexerState
from lark.parsers.lalr_analysis import Shift

__all__ = ["RawTok", "scan", "P4Lexer", "ScanError", "would_shift", "type_flags", "mark_brackets"]

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<int>\d+[ws](?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|0[dD][0-9_]+|\d[\d_]*)
            |0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|0[dD][0-9_]+|\d[\d_]*)
  | (?P<anno>@[ \t]*[A-Za-z_][A-Za-z0-9_]*)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>&&&|\|\+\||\|-\||\.\.|\+\+|<<|<=|>=|==|!=|&&|\|\||[{}()\[\];:,.<>=+\-*/%&|^~!?])
    """,
    re.VERBOSE | re.DOTALL,
)

_TYPE_START_KW = frozenset({"bit", "int", "varbit", "bool", "tuple", "string", "error", "void"})
_BRACKET_KW = frozenset({"bit", "int", "varbit", "tuple"})

#: Punctuation that belongs to an operator class (a declared terminal of the grammar).
_OP_CLASSES: dict[str, tuple[str, ...]] = {
    "==": ("EQOP",), "!=": ("EQOP",),
    "<": ("RELOP",), ">": ("RELOP",), "<=": ("RELOP",), ">=": ("RELOP",),
    "<<": ("SHIFTOP",), ">>": ("SHIFTOP",),
    "+": ("ADDOP", "PREFIXOP"), "-": ("ADDOP", "PREFIXOP"), "++": ("ADDOP",),
    "|+|": ("ADDOP",), "|-|": ("ADDOP",),
    "*": ("MULOP",), "/": ("MULOP",), "%": ("MULOP",),
    "!": ("PREFIXOP",), "~": ("PREFIXOP",),
}


class ScanError(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


@dataclass(slots=True)
class RawTok:
    kind: str  # id, int, str, punct, anno, body, targ_lt
    value: str
    start: int
    end: int
    line: int
    col: int


def _balanced_paren(text: str, i: int) -> int:
    """Index just past the ')' matching the '(' at text[i] (strings respected)."""
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _has_digits(literal: str) -> bool:
    """Whether the value part of an integer literal has a digit (``0x_`` has none)."""
    m = re.fullmatch(r"(?:\d+[ws])?(?:0[xXbBoOdD])?([0-9a-fA-F_]*)", literal)
    return m is None or any(c != "_" for c in m.group(1))


def scan(text: str) -> list[RawTok]:
    """Split preprocessed P4 text into raw tokens (comments and blanks dropped)."""
    toks: list[RawTok] = []
    pos, line, line_start, n = 0, 1, 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ScanError(line, pos - line_start + 1, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        value = m.group()
        col = pos - line_start + 1
        if kind == "anno":
            toks.append(RawTok("anno", value[1:].strip(), pos, m.end(), line, col))
            j = m.end()
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] == "(":
                end = _balanced_paren(text, j)
                if end < 0:
                    raise ScanError(line, col, f"unterminated annotation body of @{value[1:].strip()}")
                body_line = line + text.count("\n", pos, j)
                body_col = j - (text.rfind("\n", 0, j) + 1) + 1
                toks.append(RawTok("body", text[j + 1:end - 1], j, end, body_line, body_col))
                m_end = end
            else:
                m_end = m.end()
        else:
            m_end = m.end()
            if kind == "id" and value == "_":
                kind = "punct"
            elif kind == "int" and not _has_digits(value):
                raise ScanError(line, col, f"invalid integer literal '{value}': no digits")
            if kind not in ("ws", "lcomment", "bcomment"):
                toks.append(RawTok(kind, value, pos, m_end, line, col))
        nl = text.count("\n", pos, m_end)
        if nl:
            line += nl
            line_start = text.rfind("\n", pos, m_end) + 1
        pos = m_end
    return toks


#: Words after which ``name<...>(`` is a call with explicit type arguments, not a prototype.
_NOT_A_RETURN_TYPE = frozenset({"return", "else", "exit", "transition", "select", "apply", "default"})


def _type_param_list(toks: list[RawTok], i: int) -> tuple[int, list[int]] | None:
    """If toks[i] is '<' opening ``<A, B, ...>`` (plain identifiers only), the index of
    the closing '>' and the indices of the identifiers."""
    n = len(toks)
    ids: list[int] = []
    j = i + 1
    while j < n and toks[j].kind == "id":
        ids.append(j)
        j += 1
        if j < n and toks[j].kind == "punct" and toks[j].value == ",":
            j += 1
            continue
        break
    if ids and j < n and toks[j].kind == "punct" and toks[j].value == ">":
        return j, ids
    return None


def _decl_end(toks: list[RawTok], i: int) -> int:
    """Index just past the declaration whose rest starts at toks[i]: its ';' outside
    parentheses and braces, or the '}' closing its body."""
    paren = brace = 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t.kind != "punct":
            continue
        v = t.value
        if v == "(":
            paren += 1
        elif v == ")":
            paren -= 1
        elif v == "{":
            brace += 1
        elif v == "}":
            brace -= 1
            if brace <= 0:
                return j + 1
        elif v == ";" and paren <= 0 and brace == 0:
            return j + 1
    return len(toks)


def type_flags(toks: list[RawTok]) -> list[bool]:
    """For each token, whether it is a type name at that point (p4c's lexer type table).

    As in p4c, a declared type (``header``, ``struct``, ``header_union``, ``parser``,
    ``control``, ``package``, ``extern`` object, ``typedef``, ``type``, ``enum``) is a type
    name from its declaration on, and a type parameter (``extern E<T>``, ``control C<H>``,
    ``R f<T>(...)``) only inside the declaration that introduces it. In the type
    parameter list itself a name is never a type name, so a program's own ``struct T``
    or ``control I`` does not change how v1model.p4's ``register<T, I>`` parses.
    """
    n = len(toks)
    declared: dict[str, int] = {}
    scopes: list[tuple[int, int, frozenset[str]]] = []
    params_at: list[int] = []
    for i, t in enumerate(toks):
        if t.kind == "punct" and t.value == "<" and i >= 2 and toks[i - 1].kind == "id":
            found = _type_param_list(toks, i)
            if found is None:
                continue
            close, ids = found
            after = toks[close + 1].value if close + 1 < n else ""
            before = toks[i - 2]
            if before.kind == "id" and before.value == "extern":
                is_params = after == "{"
            elif before.kind == "id" and before.value in ("parser", "control", "package"):
                is_params = after == "("
            else:  # a function or method prototype: RET name<T>(...)
                is_params = after == "(" and (
                    (before.kind == "id" and before.value not in _NOT_A_RETURN_TYPE)
                    or (before.kind == "punct" and before.value in (">", "]")))
            if is_params:
                params_at.extend(ids)
                scopes.append((close + 1, _decl_end(toks, close + 1),
                               frozenset(toks[k].value for k in ids)))
            continue
        if t.kind != "id":
            continue
        nxt = toks[i + 1] if i + 1 < n else None
        if t.value in ("header", "struct", "header_union", "parser", "control", "package"):
            if nxt is not None and nxt.kind == "id":
                declared.setdefault(nxt.value, i + 1)
        elif t.value == "extern":
            if nxt is not None and nxt.kind == "id" and i + 2 < n and toks[i + 2].value in ("{", "<"):
                if toks[i + 2].value == "{" or _after_angle(toks, i + 2) == "{":
                    declared.setdefault(nxt.value, i + 1)
        elif t.value in ("typedef", "type", "enum"):
            # typedef T NAME;  type T NAME;  enum NAME {..}  enum bit<8> NAME {..}
            stop = ";" if t.value != "enum" else "{"
            j = i + 1
            while j < n and toks[j].value not in (stop, ";", "{", "}"):
                j += 1
            if j < n and toks[j - 1].kind == "id" and j - 1 > i:
                if t.value == "type" and not (i == 0 or toks[i - 1].value in (";", "}") or toks[i - 1].kind == "body" or toks[i - 1].kind == "anno"):
                    continue  # 'type' used as a name, not a declaration
                declared.setdefault(toks[j - 1].value, j - 1)
    flags = [t.kind == "id" and declared.get(t.value, n) <= i for i, t in enumerate(toks)]
    for start, end, names in scopes:
        for k in range(start, end):
            if toks[k].kind == "id" and toks[k].value in names:
                flags[k] = True
    for k in params_at:
        flags[k] = False
    return flags


def _after_angle(toks: list[RawTok], i: int) -> str:
    """The token value after the '>' that closes the '<' at toks[i] ('' if none)."""
    depth = 0
    for j in range(i, min(len(toks), i + 200)):
        v = toks[j].value
        if toks[j].kind != "punct":
            continue
        if v == "<":
            depth += 1
        elif v == ">":
            depth -= 1
            if depth == 0:
                return toks[j + 1].value if j + 1 < len(toks) else ""
        elif v in (";", "{", "}", "=", "&&", "||"):
            return ""
    return ""


def mark_brackets(toks: list[RawTok], types: list[bool]) -> list[RawTok]:
    """Mark '<' that opens explicit type arguments (kind targ_lt) and merge '>' '>'
    outside type brackets into one '>>' token. ``types`` is :func:`type_flags`."""
    out: list[RawTok] = []
    depth = 0
    last_closed = False  # the previous token was a '>' closing a type bracket
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind == "punct" and t.value == "<":
            prev = toks[i - 1] if i else None
            nxt = toks[i + 1] if i + 1 < n else None
            if prev is not None and prev.kind == "id":
                if prev.value in _BRACKET_KW:
                    depth += 1
                elif types[i - 1]:
                    depth += 1
                    t = RawTok("targ_lt", "<", t.start, t.end, t.line, t.col)
                elif (nxt is not None and (nxt.value in _TYPE_START_KW or types[i + 1])
                      and _after_angle(toks, i) == "("):
                    depth += 1
                    t = RawTok("targ_lt", "<", t.start, t.end, t.line, t.col)
            out.append(t)
            last_closed = False
            continue
        closed = False
        if t.kind == "punct" and t.value == ">":
            if depth > 0:
                depth -= 1
                closed = True
            elif out and out[-1].kind == "punct" and out[-1].value == ">" and out[-1].end == t.start \
                    and not last_closed:
                prev = out.pop()
                out.append(RawTok("punct", ">>", prev.start, t.end, prev.line, prev.col))
                last_closed = False
                continue
        out.append(t)
        last_closed = closed
    return out


class P4Lexer(Lexer):
    """A lark custom lexer: classifies the raw tokens against the parser state."""

    __future_interface__ = 2

    def __init__(self, lexer_conf: Any) -> None:
        self.literals: dict[str, str] = {}
        for t in lexer_conf.terminals:
            if t.pattern.type == "str":
                self.literals[t.pattern.value] = t.name

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        src = lexer_state.text
        raw = scan(src if isinstance(src, str) else str(src.text))
        flags = type_flags(raw)
        toks = mark_brackets(raw, flags)
        # offsets of the identifiers that are type names where they stand
        types = {t.start for t, f in zip(raw, flags, strict=True) if f}
        states = parser_state.parse_conf.states
        lit = self.literals
        for t in toks:
            accepted = states[parser_state.position]
            kind = t.kind
            if kind == "id":
                cands = []
                kw = lit.get(t.value)
                if kw is not None:
                    cands.append(kw)
                if t.start in types:
                    cands += ["TYPE_NAME", "NAME"]
                else:
                    cands += ["NAME", "TYPE_NAME"]
                ttype = _choose(cands, accepted, parser_state, t)
            elif kind == "int":
                ttype = "INTEGER"
            elif kind == "str":
                ttype = "STRING_LIT"
            elif kind == "anno":
                ttype = "ANNOTATION"
            elif kind == "body":
                ttype = "ANNO_BODY"
            elif kind == "targ_lt":
                ttype = _choose(["TARG_LT", lit.get("<", "RELOP"), "RELOP"], accepted, parser_state, t)
            else:
                cands = []
                if t.value in lit:
                    cands.append(lit[t.value])
                cands.extend(_OP_CLASSES.get(t.value, ()))
                ttype = _choose(cands, accepted, parser_state, t) if cands else t.value
            yield Token(ttype, t.value, t.start, t.line, t.col, t.line, t.col + len(t.value), t.end)


def _choose(cands: list[str], accepted: Any, parser_state: Any, t: RawTok) -> str:
    """The first candidate terminal the parser really accepts here.

    LALR merges look-ahead sets, so a terminal in the state's table may still be
    rejected after the pending reductions; when several candidates look possible,
    each is tried on a copy of the parser state.
    """
    possible = [c for c in cands if c in accepted]
    if not possible:
        return cands[0]
    if len(possible) == 1:
        return possible[0]
    for c in possible:
        if would_shift(parser_state, c):
            return c
    return possible[0]


def would_shift(parser_state: Any, ttype: str) -> bool:
    """Whether the LALR automaton shifts ``ttype`` after the reductions it implies.

    Simulated on the state stack alone (lark's own feed_token would run the tree
    callbacks, which reuse child lists in place)."""
    states = parser_state.parse_conf.states
    stack = list(parser_state.state_stack)
    for _ in range(10_000):
        action = states[stack[-1]].get(ttype)
        if action is None:
            return False
        kind, arg = action
        if kind is Shift:
            return True
        size = len(arg.expansion)
        if size:
            del stack[-size:]
        goto = states[stack[-1]].get(arg.origin.name)
        if goto is None:
            return False
        stack.append(goto[1])
    return False
