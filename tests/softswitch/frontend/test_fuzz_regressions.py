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


def test_widths_beyond_p4c_limit() -> None:
    big = "99999999999999999999999999999999999999"
    src = program_text(decls=f"header big_t {{ bit<{big}> f; }}\n")
    _expect(src, f"bit<{big}>", f"bit<{big}>: width {big} is too large; p4c and softswitch support widths up to 2048")
    src = program_text(locals_="int<2049> x;")
    _expect(src, "int<2049>", "width 2049 is too large")
    src = program_text(locals_="varbit<4096> x;")
    _expect(src, "varbit<4096>", "width 4096 is too large")
    src = program_text(apply="meta.m8 = (bit<8>)5000w1;")
    _expect(src, "5000w1", "literal 5000w1: width 5000 is too large")
    src = program_text(locals_="bit<2048> x; bit<1> y;", apply="meta.m8 = (x ++ y)[7:0];")
    _expect(src, "x ++ y", "the result of '++': width 2049 is too large")
    load_program(program_text(locals_="bit<2048> x; int<2048> y;"), "t.p4")


def test_header_stack_size_beyond_p4c_limit() -> None:
    src = program_text(decls="struct s_t { h_t[99999999999] hs; }\n")
    _expect(src, "h_t[99999999999]", "header stack size 99999999999 is too large; p4c and softswitch "
                                     "support at most 256 elements")
    load_program(program_text(decls="struct s_t { h_t[256] hs; }\n"), "t.p4")


def test_constant_shift_by_a_huge_amount() -> None:
    huge = "1000000000000000000"
    src = program_text(decls=f"const int K = 1 << {huge};\n")
    _expect(src, huge, f"shift amount {huge} is too large for an integer without a width (at most 2048)")
    # with a width, a shift by the width or more is 0, folded without building a huge integer
    src = program_text(decls=f"const bit<8> K = 8w1 << {huge};\nconst int<8> J = -8s1 >> {huge};\n"
                             f"const bit<8> L = 8w3 << 8w255;\n")
    consts = load_program(src, "t.p4").constants
    assert [consts[n].value for n in ("K", "J", "L")] == [0, -1, 0]  # type: ignore[union-attr]


@pytest.mark.parametrize(("lit", "reason"), [('"\\x"', "truncated \\xXX escape"),
                                             ('"\\u12"', "truncated \\uXXXX escape"),
                                             ('"\\N{nope}"', "unknown Unicode character name")])
def test_invalid_string_escapes(lit: str, reason: str) -> None:
    src = program_text(apply=f"log_msg({lit});")
    _expect(src, lit, f"invalid escape sequence in string literal {lit}: {reason}")


def test_deep_nesting_is_a_diagnostic_at_the_declaration() -> None:
    src = program_text(apply="meta.m8 = 1" + " + 1" * 5000 + ";")
    _expect(src, "control I", "program nested too deeply")
    src = program_text(apply="{" * 2000 + "}" * 2000)
    _expect(src, "control I", "program nested too deeply")
