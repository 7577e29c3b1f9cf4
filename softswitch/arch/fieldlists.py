"""``@field_list(N)`` annotations on user-metadata fields.

v1model's ``clone_preserving_field_list``, ``resubmit_preserving_field_list`` and
``recirculate_preserving_field_list`` preserve the user-metadata fields annotated
``@field_list(N)`` for the given N. The IR's StructT carries no per-field annotations,
so when the IR does not provide them (see :func:`from_ir`) we recover them from the
source text: the struct's declaration is found in the main file or in the files it
``#include``s with quotes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from softswitch import ir

__all__ = ["FieldPath", "FieldLists", "from_ir", "from_source"]

#: (root, path): root is "meta" (the user metadata) or "std" (standard_metadata)
FieldPath = tuple[str, tuple[str, ...]]
#: field list index -> fields it preserves
FieldLists = dict[int, list[FieldPath]]

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_ANNOT = re.compile(r"@\s*field_list\s*\(([^)]*)\)")


def from_ir(meta: ir.StructT) -> FieldLists | None:
    """Field lists from IR field annotations, if the frontend provides them as
    ``StructT.field_annotations`` (a tuple parallel to ``fields``); else None."""
    per_field = getattr(meta, "field_annotations", None)
    if not per_field:
        return None
    out: FieldLists = {}
    for (name, _), annots in zip(meta.fields, per_field, strict=False):
        for a in annots:
            if a.name == "field_list":
                for idx in a.args:
                    if isinstance(idx, int):
                        out.setdefault(idx, []).append(("meta", (name,)))
    return out


def _gather_sources(source: str, filename: str, include_dirs: Sequence[str], seen: set[str]) -> list[str]:
    texts = [source]
    base = os.path.dirname(os.path.abspath(filename)) if filename else os.getcwd()
    for inc in _INCLUDE.findall(source):
        for d in (base, *include_dirs):
            path = os.path.normpath(os.path.join(d, inc))
            if path in seen:
                break
            if os.path.isfile(path):
                seen.add(path)
                try:
                    with open(path, encoding="utf-8", errors="replace") as f:
                        text = f.read()
                except OSError:
                    break
                texts.extend(_gather_sources(text, path, include_dirs, seen))
                break
    return texts


def _struct_body(text: str, name: str) -> str | None:
    m = re.search(r"\bstruct\s+" + re.escape(name) + r"\s*\{", text)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i - 1]


def from_source(source: str, filename: str, include_dirs: Sequence[str], meta_struct: str) -> FieldLists:
    """Scan the program text for ``@field_list(...)`` on fields of ``meta_struct``."""
    out: FieldLists = {}
    for text in _gather_sources(source, filename, include_dirs, set()):
        body = _struct_body(_COMMENT.sub(" ", text), meta_struct)
        if body is None:
            continue
        for decl in body.split(";"):
            annots = _ANNOT.findall(decl)
            if not annots:
                continue
            rest = _ANNOT.sub(" ", decl).strip()
            m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", rest)
            if not m:
                continue
            for arg in annots:
                for tok in arg.split(","):
                    tok = tok.strip()
                    try:
                        index = int(tok, 0)
                    except ValueError:  # not a literal index (the frontend ignores it too)
                        continue
                    out.setdefault(index, []).append(("meta", (m.group(1),)))
        break
    return out
