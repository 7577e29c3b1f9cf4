"""Preprocessing the way p4c does it: the system C preprocessor, with line markers.

p4c runs ``cpp -C -undef -nostdinc -x assembler-with-cpp -I<p4include> ...``: comments
are kept (-C), no predefined macros or system headers, and the assembler language
mode keeps cpp from choking on apostrophes in comments. ``-P`` is NOT passed, so the
``# N "file"`` markers survive and :class:`LineMap` maps every output line back to
its original file and line.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from softswitch import ir
from softswitch.frontend.diagnostics import Diagnostic, FrontendError

__all__ = ["P4INCLUDE", "LineMap", "flatten", "preprocess"]

#: Directory holding our core.p4 and v1model.p4.
P4INCLUDE = str(Path(__file__).resolve().parent.parent / "p4include")

_MARKER = re.compile(r'^#\s*(?:line\s+)?(\d+)\s+"((?:[^"\\]|\\.)*)"')


@dataclass(slots=True)
class LineMap:
    """Maps lines of the preprocessed text back through the ``# N "file"`` markers."""

    # Output line numbers (1-based) of the first line each marker describes, sorted.
    starts: list[int] = field(default_factory=list)
    origins: list[tuple[str, int]] = field(default_factory=list)  # (file, line) of that line
    rename: dict[str, str] = field(default_factory=dict)  # temp path -> user-visible name
    #: Just past the last non-blank line of the main file (None when it has none).
    main_end: ir.Pos | None = None

    def add(self, out_line: int, file: str, line: int) -> None:
        self.starts.append(out_line)
        self.origins.append((self.rename.get(file, file), line))

    def pos(self, out_line: int, col: int) -> ir.Pos:
        i = bisect.bisect_right(self.starts, out_line) - 1
        if i < 0:
            return ir.Pos("<preprocessed>", out_line, col)
        file, line = self.origins[i]
        return ir.Pos(file, line + (out_line - self.starts[i]), col)

    def files(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for f, _ in self.origins:
            if not f.startswith("<"):
                seen.setdefault(f, None)
        return tuple(seen)


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def preprocess(
    source: str,
    filename: str,
    include_dirs: Sequence[str] = (),
    defines: Sequence[str] = (),
    *,
    real_path: str | None = None,
) -> tuple[str, LineMap]:
    """Run cpp over ``source``; returns the text (markers blanked out) and its LineMap.

    ``real_path`` is the file to preprocess when it exists on disk (``load_file``);
    otherwise ``source`` is written to a temporary file named like ``filename`` so
    that ``#include "x.p4"`` still resolves next to ``filename``'s directory.
    """
    stdout, lm = _run_cpp(source, filename, include_dirs, defines, real_path=real_path)
    lines = stdout.split("\n")
    for i, text in enumerate(lines):
        if text.startswith("#"):
            m = _MARKER.match(text)
            if m:
                lm.add(i + 2, _unescape(m.group(2)), int(m.group(1)))
            # Markers and other directives (#pragma, #ident) carry no P4 text.
            lines[i] = ""
    files = lm.files()
    if files:
        for i in range(len(lines) - 1, -1, -1):
            text = lines[i].rstrip()
            if text and lm.pos(i + 1, 1).file == files[0]:
                lm.main_end = lm.pos(i + 1, len(text) + 1)
                break
    return "\n".join(lines), lm


def flatten(
    source: str,
    filename: str,
    include_dirs: Sequence[str] = (),
    defines: Sequence[str] = (),
    *,
    real_path: str | None = None,
) -> str:
    """The preprocessed program as one self-contained text, line markers kept.

    This is softswitch's device config (what BMv2's JSON is to simple_switch): it needs
    no include path, and preprocessing it again maps positions back to the original
    files through its ``# N "file"`` markers.
    """
    stdout, _ = _run_cpp(source, filename, include_dirs, defines, real_path=real_path)
    return stdout


def _run_cpp(
    source: str,
    filename: str,
    include_dirs: Sequence[str],
    defines: Sequence[str],
    *,
    real_path: str | None,
) -> tuple[str, LineMap]:
    """Run cpp; returns its raw output (markers kept) and a LineMap to fill."""
    user_dirs = [str(d) for d in include_dirs]
    with tempfile.TemporaryDirectory(prefix="softswitch-cpp-") as tmp:
        if real_path is None:
            path = os.path.join(tmp, os.path.basename(filename) or "program.p4")
            Path(path).write_text(source)
            here = os.path.dirname(os.path.abspath(filename))
            if os.path.isdir(here):
                user_dirs.insert(0, here)
        else:
            path = real_path
        cmd = ["cpp", "-C", "-undef", "-nostdinc", "-x", "assembler-with-cpp"]
        for d in user_dirs:
            cmd += ["-I", d]
        cmd += ["-I", P4INCLUDE]
        for d in defines:
            cmd.append(f"-D{d}")
        cmd.append(path)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except FileNotFoundError as e:
            raise FrontendError([Diagnostic(ir.Pos(filename, 0, 0), "error",
                                            f"cannot run the C preprocessor 'cpp': {e}")]) from None
        lm = LineMap(rename={path: filename})
        if proc.returncode != 0:
            raise FrontendError(_cpp_errors(proc.stderr, path, filename))
    return proc.stdout, lm


_CPP_DIAG = re.compile(r"^(.*?):(\d+):(?:(\d+):)?\s*(fatal error|error|warning):\s*(.*)$")


def _cpp_errors(stderr: str, path: str, filename: str) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    for text in stderr.splitlines():
        m = _CPP_DIAG.match(text)
        if m:
            f = filename if m.group(1) == path else m.group(1)
            sev = "warning" if m.group(4) == "warning" else "error"
            diags.append(Diagnostic(ir.Pos(f, int(m.group(2)), int(m.group(3) or 0)), sev, m.group(5)))
    if not any(d.severity == "error" for d in diags):
        diags.append(Diagnostic(ir.Pos(filename, 0, 0), "error",
                                f"preprocessing failed: {stderr.strip() or 'cpp exited with an error'}"))
    return diags
