"""Regression tests for Device.compile crashes found by tests/softswitch/frontend/test_fuzz.py:
each one is now a CompileError with p4c-style lines."""

from __future__ import annotations

import re

import pytest

from softswitch.device import CompileError, Device

PROGRAM = """#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; }
struct headers_t { h_t h; }
struct meta_t { bit<8> m; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
%s
    apply { }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""

DIAG = re.compile(r"^[^:\n]+:\d+:\d+: error: \S")


def _refused(src: str) -> str:
    with pytest.raises(CompileError) as ei:
        Device.compile(src, "t.p4")
    msg = str(ei.value)
    assert all(DIAG.match(ln) for ln in msg.split("\n")), msg
    assert "internal" not in msg, msg
    return msg


@pytest.mark.parametrize("decl", ["register<bit<32>>(1000000000) r;",
                                  "counter(16777217, CounterType.packets) r;",
                                  "meter(2147483647, MeterType.bytes) r;"])
def test_huge_extern_arrays_are_refused_not_allocated(decl: str) -> None:
    src = PROGRAM % decl
    line, col = src[:src.index(decl)].count("\n") + 1, 1
    kind = decl.split("<")[0].split("(")[0]
    msg = _refused(src)
    assert re.fullmatch(rf"t\.p4:{line}:{col}: error: {kind} I\.r: size \d+ is too large; "
                        r"softswitch supports at most 16777216 elements", msg), msg



def test_large_extern_array_within_the_limit_is_accepted() -> None:
    Device.compile(PROGRAM % "register<bit<8>>(65536) r;", "t.p4")


@pytest.mark.parametrize("apply", ["if (meta.m == 1) {" * 150 + "}" * 150,
                                   "meta.m = " + "(meta.m + " * 150 + "1" + ")" * 150 + ";"])
def test_nesting_beyond_the_code_generator_is_a_diagnostic(apply: str) -> None:
    src = (PROGRAM % "").replace("apply { }\n}\ncontrol E", "apply { " + apply + " }\n}\ncontrol E")
    msg = _refused(src)
    assert msg.startswith("t.p4:1:1: error: program nested too deeply for softswitch's code generator"), msg


def test_field_list_fallback_ignores_a_malformed_index() -> None:
    # The textual @field_list fallback (used when the metadata struct has no fields)
    # must not die on int('zz'), even for text cpp removed.
    src = (PROGRAM % "").replace("struct meta_t { bit<8> m; }",
                                 "#if 0\nstruct meta_t { @field_list(zz) bit<8> m; }\n#endif\nstruct meta_t { }")
    Device.compile(src, "t.p4")
