"""What a pushed device config may contain.

softswitch's device config is P4 source. A controller pushes it over the network, so it
must not make the switch read files of its host: it has to be self-contained, as
``softswitch compile -o`` writes it (every include expanded). The only include
directives allowed are softswitch's own ``<core.p4>`` and ``<v1model.p4>``; any other
(``#include "x"``, absolute paths, computed includes, ``#include_next``, ``#import``)
and ``__has_include`` are refused before the preprocessor runs.
"""

from __future__ import annotations

import re

__all__ = ["ALLOWED_INCLUDES", "DeviceConfigError", "check_self_contained"]

ALLOWED_INCLUDES = frozenset({"<core.p4>", "<v1model.p4>"})

# cpp removes comments and joins backslash-newlines before it recognises directives, so
# the check does the same first; over-refusing (e.g. a directive-like line inside a
# string) is acceptable for a generated, self-contained file.
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(include_next|include|import)\b(.*)$", re.M)
_HAS_INCLUDE = re.compile(r"__has_include(_next)?\b")


class DeviceConfigError(ValueError):
    """The pushed source would read files of the switch's host."""


def check_self_contained(source: str) -> None:
    text = _COMMENTS.sub(" ", source.replace("\\\r\n", "").replace("\\\n", ""))
    for m in _DIRECTIVE.finditer(text):
        directive, target = m.group(1), m.group(2).strip()
        if directive != "include" or target not in ALLOWED_INCLUDES:
            line = text.count("\n", 0, m.start()) + 1
            raise DeviceConfigError(
                f"p4_device_config line {line}: '#{directive} {target}' is not allowed: a pushed program must be "
                f"self-contained (only {' and '.join(sorted(ALLOWED_INCLUDES))} may be included); "
                "write it with `softswitch compile PROG.p4 -o OUT.p4`")
    if _HAS_INCLUDE.search(text):
        raise DeviceConfigError("p4_device_config uses __has_include, which probes the switch's files; "
                                "a pushed program must be self-contained")
