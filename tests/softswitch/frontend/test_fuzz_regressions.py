"""Regression tests for crashes and hangs found by test_fuzz.py: each one is now a diagnostic."""

from __future__ import annotations

import re

import pytest

from softswitch.frontend import Diagnostic, FrontendError, load_program

from .conftest import line_col, program_text


def _expect(src: str, needle: str, message: str | re.Pattern[str], occurrence: int = 1) -> Diagnostic:
    """The program is refused with ``message`` at the position of ``needle``, and no
    diagnostic is an internal error."""
    with pytest.raises(FrontendError) as ei:
        load_program(src, "t.p4")
    err = ei.value
    assert "internal" not in str(err), str(err)
    line, col = line_col(src, needle, occurrence)
    for d in err.diagnostics:
        hit = message in d.message if isinstance(message, str) else message.search(d.message) is not None
        if hit:
            assert (d.pos.file, d.pos.line, d.pos.col, d.severity) == ("t.p4", line, col, "error"), str(err)
            return d
    raise AssertionError(f"no diagnostic matching {message!r} in:\n{err}")


def test_integer_literal_without_digits() -> None:
    for lit in ("0x_", "0b__", "8w0x_", "4s0o_"):
        src = program_text(apply=f"meta.m8 = {lit};")
        _expect(src, lit, f"invalid integer literal '{lit}': no digits")
