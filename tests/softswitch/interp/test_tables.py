"""The table match engine: exact, lpm, ternary/range/optional priorities, validation."""

from __future__ import annotations

import pytest
from irb import P, bit, var

from softswitch import ir
from softswitch.interp.tables import (
    EntryExists,
    EntryInvalid,
    EntryNotFound,
    Exact,
    Lpm,
    OptionalMatch,
    Range,
    Table,
    TableEntry,
    TableFull,
    Ternary,
)


def make(kinds: list[str], widths: list[int], size: int | None = None, names: list[str] | None = None,
         default_const: bool = False) -> Table:
    keys = tuple(ir.TableKey(var(f"k{i}", bit(w)), k, (names or [f"hdr.k{i}"] * len(kinds))[i])
                 for i, (k, w) in enumerate(zip(kinds, widths, strict=True)))
    decl = ir.TableDecl("t", keys, (), ir.DefaultAction("NoAction", True, (), False), size=size)
    return Table("C.t", decl, tuple(widths), {"NoAction": (), "C.fwd": (9,), "C.only_def": ()},
                 "NoAction", (), default_is_const=default_const, default_only=["C.only_def"])


def test_exact_hit_miss_modify_delete() -> None:
    t = make(["exact", "exact"], [8, 16])
    e = TableEntry((Exact(1), Exact(2)), "C.fwd", (5,))
    t.insert(e)
    assert t.lookup((1, 2)) is e and t.lookup((1, 3)) is None
    e.packets = 3
    stored = t.modify(TableEntry((Exact(1), Exact(2)), "C.fwd", (6,)))
    assert stored is e and e.args == (6,) and e.packets == 3
    with pytest.raises(EntryExists):
        t.insert(TableEntry((Exact(1), Exact(2)), "C.fwd", (5,)))
    assert t.delete((Exact(1), Exact(2)), 0) is e
    assert t.lookup((1, 2)) is None and len(t) == 0
    with pytest.raises(EntryNotFound):
        t.delete((Exact(1), Exact(2)), 0)


def test_lpm_longest_prefix_wins_and_default_route() -> None:
    t = make(["lpm"], [32])
    t.insert(TableEntry((None,), "C.fwd", (1,)))
    t.insert(TableEntry((Lpm(0x0A000000, 8),), "C.fwd", (2,)))
    t.insert(TableEntry((Lpm(0x0A010000, 16),), "C.fwd", (3,)))
    t.insert(TableEntry((Lpm(0x0A010203, 32),), "C.fwd", (4,)))
    look = lambda k: t.lookup((k,)).args[0]  # noqa: E731
    assert look(0x0A010203) == 4
    assert look(0x0A010204) == 3
    assert look(0x0A020304) == 2
    assert look(0x0B000000) == 1
    t.delete((Lpm(0x0A010000, 16),), 0)
    assert look(0x0A010204) == 2


def test_lpm_with_exact_key() -> None:
    t = make(["exact", "lpm"], [8, 32])
    t.insert(TableEntry((Exact(1), Lpm(0x0A000000, 8)), "C.fwd", (1,)))
    t.insert(TableEntry((Exact(2), Lpm(0x0A000000, 16)), "C.fwd", (2,)))
    assert t.lookup((1, 0x0A0B0C0D)).args == (1,)
    assert t.lookup((2, 0x0A000C0D)).args == (2,)
    assert t.lookup((2, 0x0A0B0C0D)) is None


def test_ternary_priority_higher_wins_and_ties_go_to_first_inserted() -> None:
    t = make(["ternary"], [8])
    low = TableEntry((Ternary(0x00, 0x00),), "C.fwd", (1,), priority=1)
    high = TableEntry((Ternary(0x10, 0xF0),), "C.fwd", (2,), priority=10)
    tie_first = TableEntry((Ternary(0x01, 0x0F),), "C.fwd", (3,), priority=5)
    tie_second = TableEntry((Ternary(0x11, 0xFF),), "C.fwd", (4,), priority=5)
    for e in (low, tie_first, tie_second, high):
        t.insert(e)
    assert t.lookup((0x11,)) is high
    assert t.lookup((0x21,)) is tie_first
    assert t.lookup((0x22,)) is low
    t.delete((Ternary(0x10, 0xF0),), 10)
    assert t.lookup((0x11,)) is tie_first


def test_range_and_optional() -> None:
    t = make(["range", "optional"], [16, 8])
    a = TableEntry((Range(10, 20), OptionalMatch(6)), "C.fwd", (1,), priority=2)
    b = TableEntry((Range(0, 100), None), "C.fwd", (2,), priority=1)
    t.insert(a)
    t.insert(b)
    assert t.lookup((15, 6)) is a
    assert t.lookup((15, 17)) is b
    assert t.lookup((21, 6)) is b
    assert t.lookup((101, 6)) is None


@pytest.mark.parametrize(("matches", "prio", "action", "args", "fragment"), [
    ((Exact(1),), 1, "C.fwd", (1,), "got a Exact match"),
    ((Ternary(0x100, 0xFFF),), 1, "C.fwd", (1,), "hdr.k0"),
    ((Ternary(0x3, 0x1),), 1, "C.fwd", (1,), "outside mask"),
    ((Ternary(1, 1),), 0, "C.fwd", (1,), "priority"),
    ((Ternary(1, 1),), 1, "C.nope", (1,), "C.nope"),
    ((Ternary(1, 1),), 1, "C.fwd", (), "takes 1 args"),
    ((Ternary(1, 1),), 1, "C.fwd", (512,), "bit<9>"),
    ((Ternary(1, 1),), 1, "C.only_def", (), "@defaultonly"),
    ((Ternary(1, 1), Exact(2)), 1, "C.fwd", (1,), "2 match fields"),
])
def test_invalid_entries_name_the_problem(matches: tuple, prio: int, action: str, args: tuple,
                                          fragment: str) -> None:
    t = make(["ternary"], [8])
    with pytest.raises(EntryInvalid) as ei:
        t.insert(TableEntry(matches, action, args, priority=prio))
    assert "C.t" in str(ei.value) and fragment in str(ei.value)


def test_key_name_annotation_in_messages_and_lpm_checks() -> None:
    t = make(["lpm"], [8], names=["dst"])
    with pytest.raises(EntryInvalid, match=r"dst.*outside /4"):
        t.insert(TableEntry((Lpm(0x0F, 4),), "C.fwd", (1,)))
    with pytest.raises(EntryInvalid, match="priority must be 0"):
        t.insert(TableEntry((Lpm(0xF0, 4),), "C.fwd", (1,), priority=3))
    with pytest.raises(EntryInvalid, match=r"got a Ternary"):
        t.insert(TableEntry((Ternary(0xF0, 0xF0),), "C.fwd", (1,)))


def test_size_limit_and_clear_keeps_const() -> None:
    t = make(["exact"], [8], size=2)
    t.insert(TableEntry((Exact(1),), "C.fwd", (1,), is_const=True))
    t.insert(TableEntry((Exact(2),), "C.fwd", (1,)))
    with pytest.raises(TableFull):
        t.insert(TableEntry((Exact(3),), "C.fwd", (1,)))
    t.set_default("C.fwd", (7,))
    t.clear()
    assert [e.matches for e in t.entries()] == [(Exact(1),)]
    assert t.default_entry.action == "NoAction"
    with pytest.raises(EntryInvalid):
        t.delete((Exact(1),), 0)


def test_default_action_rules() -> None:
    t = make(["exact"], [8])
    assert t.size == 1024
    t.set_default("C.only_def", ())
    assert t.default_entry.action == "C.only_def"
    t.reset_default()
    assert t.default_entry.action == "NoAction" and t.default_entry.args == ()
    with pytest.raises(EntryInvalid):
        t.set_default("C.fwd", ())
    c = make(["exact"], [8], default_const=True)
    with pytest.raises(EntryInvalid, match="const"):
        c.set_default("C.fwd", (1,))


def test_insert_sets_last_hit_and_entries_in_insertion_order() -> None:
    t = make(["exact"], [8])
    for v in (5, 3, 9):
        t.insert(TableEntry((Exact(v),), "C.fwd", (v,)))
    assert [e.args[0] for e in t.entries()] == [5, 3, 9]
    assert all(e.last_hit_ns > 0 for e in t.entries())
    assert t.get((Exact(3),), 0) is not None and t.get((Exact(4),), 0) is None


_ = P
