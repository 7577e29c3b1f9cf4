"""The softswitch frontend: P4_16 source -> typed IR (softswitch.ir).

``load_program`` / ``load_file`` preprocess with the system cpp (as p4c does), parse
with the LALR grammar in p4.lark, and type-check while building the IR. Every
problem is reported as a :class:`FrontendError` holding p4c-style diagnostics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from softswitch import ir
from softswitch.frontend.diagnostics import Diagnostic, FrontendError

__all__ = ["load_program", "load_file", "FrontendError", "Diagnostic"]


def load_program(source: str, filename: str = "program.p4", include_dirs: Sequence[str] = (),
                 defines: Sequence[str] = ()) -> ir.Program:
    """Preprocess, parse and type-check P4_16 ``source`` (``filename`` names it in diagnostics)."""
    return _load(source, filename, include_dirs, defines, None)


def load_file(path: str | os.PathLike[str], include_dirs: Sequence[str] = (),
              defines: Sequence[str] = ()) -> ir.Program:
    """Like :func:`load_program` for a file on disk (its directory is searched for includes)."""
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        raise FrontendError([Diagnostic(ir.Pos(p, 0, 0), "error", f"cannot read {p}: {e.strerror}")]) from None
    return _load(source, p, include_dirs, defines, p)


def _load(source: str, filename: str, include_dirs: Sequence[str], defines: Sequence[str],
          real_path: str | None) -> ir.Program:
    from softswitch.frontend.elaborate import elaborate
    from softswitch.frontend.parse import parse_text
    from softswitch.frontend.preprocess import preprocess

    text, lines = preprocess(source, filename, include_dirs, defines, real_path=real_path)
    try:
        tree = parse_text(text, lines)
        return elaborate(tree, lines)
    except FrontendError:
        raise
    except RecursionError:
        raise FrontendError([Diagnostic(ir.Pos(filename, 0, 0), "error",
                                        "internal: program nested too deeply")]) from None
    except Exception as e:
        raise FrontendError([Diagnostic(ir.Pos(filename, 0, 0), "error",
                                        f"internal: {type(e).__name__}: {e}")]) from None
