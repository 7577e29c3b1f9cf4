"""Helpers for frontend tests: wrap snippets into a complete v1model program."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from softswitch import ir
from softswitch.frontend import load_program

PRELUDE = """#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<16> b; bit<32> c; }
header_union u_t { h_t x; h_t y; }
struct headers_t { h_t h; h_t[4] stack; }
struct meta_t { bit<8> m8; bit<16> m16; bit<32> m32; int<8> s8; bool flag; }
"""

PARSER = """
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
%s
}
"""

DEFAULT_STATES = "state start { pkt.extract(hdr.h); transition accept; }"

REST = """
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
%s
    apply {
%s
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""


def program_text(apply: str = "", locals_: str = "", decls: str = "", states: str = DEFAULT_STATES) -> str:
    return PRELUDE + decls + PARSER % states + REST % (locals_, apply)


def build(apply: str = "", locals_: str = "", decls: str = "", states: str = DEFAULT_STATES) -> ir.Program:
    return load_program(program_text(apply, locals_, decls, states), "t.p4")


@pytest.fixture
def p4() -> Callable[..., ir.Program]:
    return build


@pytest.fixture
def p4text() -> Callable[..., str]:
    return program_text


def line_col(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the n-th occurrence of needle in text."""
    i = -1
    for _ in range(occurrence):
        i = text.index(needle, i + 1)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col
