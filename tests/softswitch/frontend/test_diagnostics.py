"""Each kind of diagnostic, with the position p4c would give (file:line:col)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from softswitch import ir
from softswitch.frontend import Diagnostic, FrontendError, load_file, load_program

from .conftest import line_col, program_text

Text = Callable[..., str]


def _error(src: str, filename: str = "t.p4") -> FrontendError:
    with pytest.raises(FrontendError) as ei:
        load_program(src, filename)
    return ei.value


def _expect(src: str, needle: str, message: str | re.Pattern[str], occurrence: int = 1) -> Diagnostic:
    err = _error(src)
    line, col = line_col(src, needle, occurrence)
    for d in err.diagnostics:
        if isinstance(message, str):
            hit = message in d.message
        else:
            hit = message.search(d.message) is not None
        if hit:
            assert (d.pos.file, d.pos.line, d.pos.col) == ("t.p4", line, col), str(err)
            assert d.severity == "error"
            assert f"t.p4:{line}:{col}: error: " in str(err)
            return d
    raise AssertionError(f"no diagnostic matching {message!r} in:\n{err}")


def test_str_is_one_line_per_diagnostic() -> None:
    src = program_text(apply="meta.m8 = nope1; meta.m8 = nope2;")
    err = _error(src)
    lines = str(err).splitlines()
    assert len(lines) == 2
    assert all(re.fullmatch(r"t\.p4:\d+:\d+: error: .+", ln) for ln in lines)


def test_syntax_error_says_what_was_expected() -> None:
    src = program_text(apply="meta.m8 = 1 +;")
    d = _expect(src, ";", "syntax error, unexpected ';'", occurrence=src.count(";", 0, src.index("1 +;")) + 1)
    assert "expected" in d.message and "integer" in d.message
    src = program_text(apply="meta.m8 = 1\n meta.m16 = 2;")
    d = _expect(src, "meta.m16 = 2", "syntax error, unexpected 'meta'")
    assert "';'" in d.message and "'&&&'" not in d.message  # only what the parser really accepts


def test_unknown_field_suggests_closest() -> None:
    src = program_text(decls="header ipv4_t { bit<32> dstAddr; }\nstruct x_t { ipv4_t ipv4; }",
                       locals_="x_t xx;", apply="xx.ipv4.dstAdr = 1;")
    d = _expect(src, "xx.ipv4.dstAdr", "no field 'dstAdr'")
    assert d.message == "no field 'dstAdr' in header ipv4_t; did you mean 'dstAddr'?"


def test_unknown_type_and_name() -> None:
    src = program_text(decls="struct s_t { hh_t f; }")
    _expect(src, "hh_t", "unknown type 'hh_t'; did you mean 'h_t'?")
    src = program_text(apply="meta.m8 = met.m8;")
    _expect(src, "met.m8", "'met' is not declared; did you mean 'meta'?")


def test_unknown_action_in_table_and_extern_method() -> None:
    src = program_text(locals_="action fwd() { } table t { key = { hdr.h.a: exact; } actions = { fwdd; } }",
                       apply="t.apply();")
    _expect(src, "fwdd", "unknown action 'fwdd' in table t; did you mean 'fwd'?")
    src = program_text(locals_="register<bit<8>>(4) r;", apply="r.reed(meta.m8, 0);")
    _expect(src, "r.reed", "extern register has no method 'reed'; did you mean 'read'?")
    src = program_text(locals_="table t { key = { hdr.h.a: exakt; } actions = { NoAction; } }",
                       apply="t.apply();")
    _expect(src, "exakt", "unknown match kind 'exakt'; did you mean 'exact'?")


def test_literal_fitting_and_no_implicit_width_change() -> None:
    src = program_text(apply="meta.m8 = 256;")
    _expect(src, "256", "value 256 does not fit in bit<8>")
    src = program_text(apply="meta.m8 = 8w300;")
    _expect(src, "8w300", "literal 8w300 does not fit in bit<8>")
    src = program_text(apply="meta.m16 = meta.m8;")
    d = _expect(src, "meta.m8;", "cannot convert bit<8> to bit<16>")
    assert "explicit cast" in d.message
    src = program_text(apply="meta.m16 = meta.m16 + meta.m8;")
    _expect(src, "meta.m16 + meta.m8", "operands of '+' have different types bit<16> and bit<8>")


def test_invalid_casts() -> None:
    src = program_text(apply="meta.m8 = (bit<8>)meta.flag;")
    _expect(src, "(bit<8>)meta.flag", "cannot cast bool to bit<8>")
    src = program_text(apply="meta.s8 = (int<8>)meta.m16;")
    _expect(src, "(int<8>)meta.m16", "cannot cast bit<16> to int<8>")


def test_lvalues_and_directions() -> None:
    src = program_text(locals_="action a(in bit<8> v) { v = 1; }", apply="a(1);")
    _expect(src, "v = 1", "cannot write 'v'")
    src = program_text(decls="const bit<8> K = 1;", apply="K = 2;")
    _expect(src, "K = 2", "must be an l-value, not a constant")
    src = program_text(locals_="register<bit<8>>(4) r;", apply="r.read(meta.m8 + 1, 0);")
    _expect(src, "meta.m8 + 1", "argument for out parameter 'result' of register.read must be an l-value")
    src = program_text(states="state start { pkt.extract(hdr.h); transition accept; }",
                       apply="hdr.h.setValid();")  # fine: inout
    load_program(src)


def test_argument_counts() -> None:
    src = program_text(locals_="action a(bit<8> x, bit<8> y) { }", apply="a(1);")
    _expect(src, "a(1)", "missing argument for parameter 'y' of action a")
    src = program_text(apply="mark_to_drop(sm, sm);")
    _expect(src, "mark_to_drop(sm, sm)", "extern function mark_to_drop takes 0 or 1 argument(s), 2 given")
    src = program_text(locals_="register<bit<8>>(4) r;", apply="r.write(0, 1, 2);")
    _expect(src, "r.write", "register.write takes 2 argument(s), 3 given")


def test_generic_inference_failure() -> None:
    src = program_text(apply="bit<8> v; random(v, 0, 9); hash(meta.m8, HashAlgorithm.crc16, 0, {meta.m8}, 8w4);")
    _expect(src, "0, {meta.m8}", "cannot infer the type of parameter 'base' of extern function hash")
    src = program_text(apply="meta.m8 = pkt_nope.lookahead();")
    _expect(src, "pkt_nope", "'pkt_nope' is not declared")


def test_select_and_switch_checks() -> None:
    states = "state start { pkt.extract(hdr.h); transition select(hdr.h.a, hdr.h.b) { (1, 2, 3): accept; } }"
    src = program_text(states=states)
    _expect(src, "(1, 2, 3)", "select has 2 key(s) but the keyset has 3")
    states = "state start { transition select(hdr.h.a) { 1: parse_x; default: accept; } }"
    src = program_text(states=states)
    _expect(src, "parse_x", "no parser state 'parse_x'")
    src = program_text(locals_="""action a1() { } action a2() { }
table t { key = { hdr.h.a: exact; } actions = { a1; } }""",
                       apply="switch (t.apply().action_run) { a2: { } }")
    _expect(src, "a2: {", "action 'a2' is not an action of table t")
    src = program_text(apply="switch (meta.m8) { 300: { } }")
    _expect(src, "300", "value 300 does not fit in bit<8>")


def test_header_methods_and_members() -> None:
    src = program_text(apply="meta.flag = hdr.h.isValidd();")
    _expect(src, "hdr.h.isValidd", "no method 'isValidd' on h_t; did you mean 'isValid'?")
    src = program_text(apply="meta.flag = hdr.h.isValid;")
    _expect(src, "hdr.h.isValid", "'isValid' is a method: call it as isValid()")
    src = program_text(apply="hdr.stack[4].a = 1;")
    _expect(src, "4]", "index 4 out of bounds for h_t[4]", occurrence=2)
    src = program_text(apply="meta.m8 = hdr.h.c[32:25];")
    _expect(src, "hdr.h.c[32:25]", "slice [32:25] out of range for bit<32>")


def test_default_action_must_be_listed() -> None:
    src = program_text(locals_="""action a1() { } action a2() { }
table t { key = { hdr.h.a: exact; } actions = { a1; } default_action = a2(); }""", apply="t.apply();")
    _expect(src, "a2();", "default_action 'a2' is not in the actions of table t")


def test_package_argument_mismatch() -> None:
    src = program_text().replace("V1Switch(P(), VC(), I(), E(), CC(), D())", "V1Switch(P(), VC(), I(), E(), CC())")
    _expect(src, "V1Switch(P()", "package V1Switch takes 6 arguments, 5 given")
    src = program_text().replace("control E(inout headers_t hdr,", "control E(in headers_t hdr,")
    _expect(src, "in headers_t hdr,", "parameter 'hdr' of E must be 'inout' as in Egress")


def test_positions_map_through_includes(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "bad.p4").write_text("// comment\n\nconst bit<8> X = 8w1;\nconst bit<4> Y = 300;\n")
    main = tmp_path / "main.p4"
    main.write_text("#include <core.p4>\n#include \"inc/bad.p4\"\n")
    with pytest.raises(FrontendError) as ei:
        load_file(main)
    (d,) = ei.value.diagnostics
    assert d.pos.file.endswith("inc/bad.p4") and (d.pos.line, d.pos.col) == (4, 18)
    assert "value 300 does not fit in bit<4>" in d.message


def test_missing_include_is_a_diagnostic(tmp_path: Path) -> None:
    main = tmp_path / "main.p4"
    main.write_text("#include <core.p4>\n\n#include \"nothere.p4\"\n")
    with pytest.raises(FrontendError) as ei:
        load_file(main)
    d = ei.value.diagnostics[0]
    assert d.pos.line == 3 and d.pos.file == str(main) and "nothere.p4" in d.message


def test_unreadable_file_is_a_diagnostic(tmp_path: Path) -> None:
    with pytest.raises(FrontendError) as ei:
        load_file(tmp_path / "missing.p4")
    assert "cannot read" in str(ei.value)


def test_missing_main() -> None:
    # reported just past the last line of the main file, not at <preprocessed>:1:1
    src = "#include <core.p4>\n#include <v1model.p4>\ncontrol C(inout bit<8> x) { apply { } }\n\n"
    err = _error(src)
    assert str(err) == ("t.p4:3:40: error: no 'main' package instantiation; "
                        "a v1model program ends with V1Switch(...) main;")
    err = _error("")
    assert str(err).startswith("t.p4:1:1: error: no 'main' package instantiation")


def test_defines_and_include_dirs(tmp_path: Path) -> None:
    (tmp_path / "defs.p4").write_text("const bit<8> FROM_DIR = WIDTH;\n")
    src = "#include <core.p4>\n#include <v1model.p4>\n#include <defs.p4>\n" + program_text().split("\n", 2)[2]
    with pytest.raises(FrontendError) as ei:
        load_program(src, "t.p4", include_dirs=[str(tmp_path)])
    assert "'WIDTH' is not declared" in str(ei.value)
    p = load_program(src, "t.p4", include_dirs=[str(tmp_path)], defines=["WIDTH=8w7"])
    assert p.constants["FROM_DIR"].value == 7  # type: ignore[union-attr]


def test_line_directive_in_source_is_honoured() -> None:
    src = program_text(apply="#line 500 \"virtual.p4\"\nmeta.m8 = 999;")
    err = _error(src)
    (d,) = err.diagnostics
    assert (d.pos.file, d.pos.line) == ("virtual.p4", 500)


def test_internal_errors_become_diagnostics(monkeypatch: pytest.MonkeyPatch) -> None:
    from softswitch.frontend import elaborate

    def boom(self: object, *args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(elaborate.Elaborator, "function_decl", boom)
    src = program_text(decls="bit<8> f(in bit<8> x) { return x; }")
    line, col = line_col(src, "bit<8> f(")
    err = _error(src)
    assert f"t.p4:{line}:{col}: error: internal: RuntimeError: boom" in str(err).splitlines()


def test_duplicate_declarations() -> None:
    src = program_text(locals_="bit<8> x; bit<16> x;", apply="")
    _expect(src, "bit<16> x;", "'x' is already declared in this scope")
    src = program_text(apply="bit<8> y; { bit<8> y; } bit<8> y;")
    _expect(src, "bit<8> y;", "'y' is already declared in this scope", occurrence=3)
    src = program_text(states="state start { transition s; } state s { transition accept; } state s { }")
    _expect(src, "state s {", "duplicate parser state 's'", occurrence=2)
    src = program_text(decls="header h_t { bit<8> z; }")
    _expect(src, "header h_t { bit<8> z; }", "type 'h_t' is already declared")


def test_blocks_must_agree_on_header_and_metadata_types() -> None:
    src = program_text(decls="struct other_t { bit<8> q; }").replace(
        "control CC(inout headers_t hdr, inout meta_t meta)", "control CC(inout headers_t hdr, inout other_t meta)")
    d = _expect(src, "inout other_t meta", "parameter 'meta' of CC has type other_t")
    assert d.message.endswith("but P uses meta_t for M")


def test_context_restrictions() -> None:
    src = program_text(apply="hdr.stack.next.a = 1;")
    _expect(src, "hdr.stack.next", "'next' of a header stack can only be used in a parser")
    src = program_text(apply="verify(true, error.NoMatch);")
    _expect(src, "verify(true", "verify() can only be called in a parser")
    src = program_text(locals_="table t { key = { hdr.h.a: exact; } actions = { NoAction; } }\n"
                               "action a() { t.apply(); }", apply="a();")
    _expect(src, "t.apply(); }", "table t can only be applied in the apply block of a control")
    src = program_text(states="state start { exit; }")
    _expect(src, "exit;", "'exit' is not allowed in a parser")


def test_no_cascade_from_a_failed_block() -> None:
    src = program_text().replace("control E(inout headers_t hdr", "control E(inout headerz_t hdr")
    err = _error(src)
    assert [d.message for d in err.diagnostics] == ["unknown type 'headerz_t'; did you mean 'headers_t'?"]


def test_action_parameter_order() -> None:
    src = program_text(locals_="action a(bit<8> cp, inout bit<8> v) { v = cp; }", apply="a(1, meta.m8);")
    _expect(src, "inout bit<8> v", "parameters with a direction must come before the directionless")


def test_enum_and_error_table_keys_are_refused_at_the_key() -> None:
    # no bit representation and no P4Runtime encoding: refused where the key is, not later
    src = program_text(decls="enum Color { RED, GREEN }", locals_="Color c = Color.RED;\n"
                       "table t { key = { hdr.h.a: exact; c: exact; } actions = { NoAction; } }",
                       apply="t.apply();")
    d = _expect(src, "c: exact", "table t: key 'c' has type Color (a non-serializable enum)")
    assert "serializable enum" in d.message and "EnumT(" not in d.message
    src = program_text(locals_="table t { key = { sm.parser_error: exact; } actions = { NoAction; } }",
                       apply="t.apply();")
    _expect(src, "sm.parser_error: exact", "table t: key 'sm.parser_error' has type error (error)")


def test_serializable_enum_table_key_is_accepted() -> None:
    src = program_text(decls="enum bit<8> Proto { TCP = 6, UDP = 17 }",
                       locals_="table t { key = { (Proto)hdr.h.a: exact; } actions = { NoAction; }\n"
                       "  const entries = { Proto.UDP: NoAction(); } }", apply="t.apply();")
    t = load_program(src, "t.p4").controls["I"].tables[0]
    assert t.keys[0].expr.type == ir.SerEnumT("Proto", ir.BitT(8), (("TCP", 6), ("UDP", 17)))
    assert t.entries is not None and t.entries[0].keysets == (ir.KsExact(17),)


def test_division_and_modulo_follow_p4c() -> None:
    # '/' and '%' are defined on bit<N> and non-negative int only; constants fold with them
    src = program_text(decls="const int<8> Q = -8s5 / 8s2;")
    _expect(src, "-8s5 / 8s2", "'/' cannot operate on signed values (int<8>)")
    src = program_text(apply="meta.s8 = meta.s8 % 3;")
    _expect(src, "meta.s8 % 3", "'%' cannot operate on signed values (int<8>)")
    src = program_text(decls="const int N = -7 / 2;")
    _expect(src, "-7 / 2", "'/' is not defined on negative numbers")
    src = program_text(apply="meta.m8 = meta.m8 % -3;")
    _expect(src, "meta.m8 % -3", "'%' is not defined on negative numbers")
    src = program_text(apply="meta.m8 = meta.m8 / 0;")
    _expect(src, "meta.m8 / 0", "division by zero")
    p = load_program(program_text(decls="const int A = 7 / 2; const int B = 7 % 3; const bit<8> C = 8w200 / 3;"),
                     "t.p4")
    assert [p.constants[n].value for n in "ABC"] == [3, 1, 66]  # type: ignore[union-attr]


_TERNARY_T = """action a(bit<8> v) { meta.m8 = v; }
table t {
    key = { hdr.h.a: ternary; }
    actions = { a; }
    %s
    const entries = {
        %s
    }
}"""


def _entry_priorities(props: str, entries: str) -> list[int | None]:
    p = load_program(program_text(locals_=_TERNARY_T % (props, entries), apply="t.apply();"), "t.p4")
    return [e.priority for e in p.controls["I"].tables[0].entries or ()]


def test_priority_delta_and_largest_priority_wins() -> None:
    three = "1 &&& 1: a(1); 2 &&& 2: a(2); 3 &&& 3: a(3);"
    # without the properties, the consumer numbers the entries (p4c's defaults)
    assert _entry_priorities("", three) == [None, None, None]
    assert _entry_priorities("largest_priority_wins = true;", three) == [None, None, None]
    # priority_delta: as p4c's EntryPriorities, the last entry 1, each earlier one delta more
    assert _entry_priorities("priority_delta = 10;", three) == [21, 11, 1]
    assert _entry_priorities("priority_delta = 10; largest_priority_wins = true;",
                             "priority = 100: 1 &&& 1: a(1); 2 &&& 2: a(2); priority = 50: 3 &&& 3: a(3); "
                             "4 &&& 4: a(4);") == [100, 90, 50, 40]
    src = program_text(locals_=_TERNARY_T % ("priority_delta = 10;", "priority = 5: 1 &&& 1: a(1); 2 &&& 2: a(2);"),
                       apply="t.apply();")
    _expect(src, "2 &&& 2: a(2);", "priority_delta = 10 gives this entry priority -5")
    src = program_text(locals_=_TERNARY_T % ("priority_delta = 0;", three), apply="t.apply();")
    _expect(src, "0;", "priority_delta must be a positive compile-time integer")
    src = program_text(locals_=_TERNARY_T % ("largest_priority_wins = false;", three), apply="t.apply();")
    _expect(src, "false;", "table t: largest_priority_wins = false is not supported")


def test_unknown_table_properties_are_kept_silently() -> None:
    p = load_program(program_text(locals_="table t { key = { hdr.h.a: exact; } actions = { NoAction; }\n"
                                  "  psa_direct_counter = 3; my_target_prop = true; }", apply="t.apply();"), "t.p4")
    t = p.controls["I"].tables[0]
    assert [n for n, _ in t.other_properties] == ["psa_direct_counter", "my_target_prop"]


def test_action_profile_implementation_is_refused() -> None:
    src = program_text(locals_="action_profile(32w128) prof;\n"
                       "table t { key = { hdr.h.a: exact; } actions = { NoAction; } implementation = prof; }",
                       apply="t.apply();")
    _expect(src, "prof; }", "table t: implementation = prof: action profiles and action selectors are not "
            "supported by softswitch")


def test_two_lpm_keys_are_refused() -> None:
    src = program_text(locals_="table t { key = { hdr.h.a: lpm; hdr.h.b: lpm; } actions = { NoAction; } }",
                       apply="t.apply();")
    _expect(src, "hdr.h.b: lpm", "table t: more than one lpm key ('hdr.h.a' and 'hdr.h.b')")


def test_a_table_has_one_call_site() -> None:
    src = program_text(locals_="table t { key = { hdr.h.a: exact; } actions = { NoAction; } }",
                       apply="if (t.apply().hit) { meta.m8 = 1; } else if (t.apply().miss) { meta.m8 = 2; }")
    d = _expect(src, "t.apply().miss", "table t is applied more than once (first at t.p4:")
    assert "one call site per table" in d.message
    # the same table name in two controls is two tables
    load_program(program_text(locals_="table t { key = { hdr.h.a: exact; } actions = { NoAction; } }",
                              apply="t.apply();").replace(
        "control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }",
        "control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {\n"
        "  table t { key = { hdr.h.a: exact; } actions = { NoAction; } } apply { t.apply(); } }"), "t.p4")
