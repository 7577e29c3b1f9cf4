"""P4 annotations as p4c writes them into P4Info ``annotations`` and ``doc`` fields.

p4c (control-plane/p4RuntimeArchHandler.h, ``Helpers::addAnnotations`` and
``addDocumentation``):

* ``@name``, ``@id``, ``@brief`` and ``@description`` are never listed as annotations;
  ``@brief`` / ``@description`` fill the message's ``doc`` instead. Every other
  annotation is listed (also ``@tableonly`` / ``@defaultonly``).
* An annotation is printed by ``ToP4`` (``Helpers::serializeOneAnnotation``,
  p4RuntimeArchHandler.cpp). The frontend parses the bodies of the annotations it
  knows (frontends/p4/parseAnnotations.cpp, control-plane/p4RuntimeAnnotations.h) into
  expressions, printed separated by ``", "``; the body of any other annotation stays a
  list of tokens, printed separated by one space (``@my(a,b)`` -> ``@my(a , b)``). An
  annotation without a body, or with an empty one, is printed without parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from finsy.proto import p4i

from softswitch import ir

__all__ = ["annotation_strings", "add_documentation", "format_annotation"]

#: never in ``annotations``: represented elsewhere (preamble name / id, ``doc``)
_SKIPPED = frozenset({"name", "id", "brief", "description"})

#: annotations whose body p4c parses as an expression list (ParseAnnotations and
#: ParseP4RuntimeAnnotations); ``@pkginfo`` / ``@platform_property`` are key-value lists
_EXPRESSION_BODIES = frozenset({
    "name", "deprecated", "noWarn", "length", "synchronous", "field_list", "match",
    "command_line", "controller_header", "id", "brief", "description", "max_group_size",
    "selector_size_semantics", "max_member_weight", "p4runtime_translation",
    "p4runtime_translation_mappings",
})
_KV_BODIES = frozenset({"pkginfo", "platform_property"})

# P4 tokens as p4c's lexer splits them (strings keep their quotes here).
_TOKEN = re.compile(r"""
    \s+
  | (?P<tok>"(?:[^"\\]|\\.)*"
      | \d+[ws][0-9a-fA-FxXbBoOdD_]+ | 0[xXbBoOdD][0-9a-fA-F_]+ | \d[\d_]*
      | [A-Za-z_][A-Za-z0-9_]*
      | &&&|\|\+\||\|-\||\.\.|\+\+|<<|<=|>=|==|!=|&&|\|\||\S)
""", re.VERBOSE | re.DOTALL)


def _tokens(body: str) -> list[str]:
    return [m.group("tok") for m in _TOKEN.finditer(body) if m.group("tok")]


def _split_commas(toks: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for t in toks:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _expression(toks: list[str]) -> str:
    # ToP4 prints member accesses tight and binary operators spaced; enough for the
    # literals and names annotation arguments are in practice.
    out = ""
    for i, t in enumerate(toks):
        if i and t not in (".", ")", "]") and toks[i - 1] not in (".", "(", "[", "!", "~"):
            out += " "
        out += t
    return out


def format_annotation(a: ir.Annotation) -> str:
    toks = _tokens(a.body)
    if not toks:
        return f"@{a.name}"
    if a.name in _EXPRESSION_BODIES:
        inner = ", ".join(_expression(p) for p in _split_commas(toks))
    elif a.name in _KV_BODIES:
        inner = ", ".join("".join(p[:2]) + _expression(p[2:]) if len(p) > 2 and p[1] == "=" else _expression(p)
                          for p in _split_commas(toks))
    else:
        inner = " ".join(toks)
    return f"@{a.name}({inner})"


def annotation_strings(annotations: Sequence[ir.Annotation]) -> list[str]:
    return [format_annotation(a) for a in annotations if a.name not in _SKIPPED]


def add_documentation(doc_owner: p4i.Preamble | p4i.MatchField | p4i.Action.Param,
                      annotations: Sequence[ir.Annotation]) -> None:
    """``doc`` from ``@brief`` / ``@description`` (the last of each wins, as in p4c),
    set only when at least one is present."""
    for a in annotations:
        if a.name in ("brief", "description") and a.args and isinstance(a.args[0], str):
            setattr(doc_owner.doc, a.name, a.args[0])
