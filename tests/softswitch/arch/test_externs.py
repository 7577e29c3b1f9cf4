"""Counter / register / meter state objects."""

from __future__ import annotations

from softswitch.arch.externs import GREEN, RED, YELLOW, CounterArray, MeterArray, MeterConfig, RegisterArray
from softswitch.arch.fieldlists import from_source


def test_counter_counts_and_ignores_out_of_range() -> None:
    c = CounterArray("c", 4, "packets_and_bytes")
    assert c.count(1, 100)
    assert c.count(1, 50)
    assert not c.count(4, 10)
    assert c.packets == [0, 2, 0, 0]
    assert c.bytes == [0, 150, 0, 0]


def test_register_truncates_and_bounds() -> None:
    r = RegisterArray("r", 2, 8)
    assert r.write(0, 0x1FF)
    assert r.read(0) == 0xFF
    assert not r.write(2, 1)
    assert r.read(2) is None
    s = RegisterArray("s", 1, 8, signed=True)
    s.write(0, 0xFF)
    assert s.read(0) == -1


def test_meter_trtcm_colours() -> None:
    m = MeterArray("m", 1, "packets")
    assert m.execute(0, 64, 0) == GREEN  # unconfigured: always green
    m.set_config(0, MeterConfig(cir=1, cburst=1, pir=2, pburst=2))
    t = 10**9
    assert m.execute(0, 64, t) == GREEN
    assert m.execute(0, 64, t) == YELLOW
    assert m.execute(0, 64, t) == RED
    assert m.execute(0, 64, t + 10**9) == GREEN  # buckets refilled after 1 s
    assert m.execute(1, 64, t) is None


def test_field_lists_from_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inc = tmp_path / "meta.p4"
    inc.write_text("struct meta_t {\n  @field_list(1) bit<32> a; // x\n  bit<8> b;\n"
                   "  @field_list(1, 2)\n  bit<16> c;\n}\n")
    main = '#include "meta.p4"\nstruct other { @field_list(1) bit<8> z; }\n'
    lists = from_source(main, str(tmp_path / "main.p4"), (), "meta_t")
    assert lists == {1: [("meta", ("a",)), ("meta", ("c",))], 2: [("meta", ("c",))]}
