"""Property tests: every match structure agrees with a brute-force reference lookup."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irb import bit, var

from softswitch import ir
from softswitch.interp.tables import (
    CACHE_MISS,
    Exact,
    FieldMatch,
    Lpm,
    OptionalMatch,
    Range,
    Table,
    TableEntry,
    Ternary,
)

W = 6  # small widths make collisions (and so the interesting cases) frequent


def table(kinds: tuple[str, ...]) -> Table:
    keys = tuple(ir.TableKey(var(f"k{i}", bit(W)), k, f"k{i}") for i, k in enumerate(kinds))
    decl = ir.TableDecl("t", keys, (), ir.DefaultAction("NoAction", True, (), False), size=100000)
    return Table("t", decl, (W,) * len(kinds), {"NoAction": (), "a": (16,)}, "NoAction")


def matches(fm: FieldMatch, v: int) -> bool:
    if fm is None:
        return True
    if isinstance(fm, (Exact, OptionalMatch)):
        return v == fm.value
    if isinstance(fm, Lpm):
        shift = W - fm.plen
        return (v >> shift) == (fm.value >> shift)
    if isinstance(fm, Ternary):
        return v & fm.mask == fm.value
    assert isinstance(fm, Range)
    return fm.lo <= v <= fm.hi


def reference(entries: list[TableEntry], key: tuple[int, ...], kinds: tuple[str, ...]) -> TableEntry | None:
    hits = [(i, e) for i, e in enumerate(entries) if all(matches(f, v) for f, v in zip(e.matches, key, strict=True))]
    if not hits:
        return None
    if "lpm" in kinds and not any(k in ("ternary", "range", "optional") for k in kinds):
        j = kinds.index("lpm")

        def plen(e: TableEntry) -> int:
            f = e.matches[j]
            return f.plen if isinstance(f, Lpm) else 0
        return max(hits, key=lambda ie: plen(ie[1]))[1]
    return min(hits, key=lambda ie: (-ie[1].priority, ie[0]))[1]


vals = st.integers(0, (1 << W) - 1)


def field(kind: str) -> st.SearchStrategy[FieldMatch]:
    if kind == "exact":
        return vals.map(Exact)
    if kind == "lpm":
        return st.tuples(vals, st.integers(0, W)).map(
            lambda t: None if t[1] == 0 else Lpm(t[0] & (((1 << t[1]) - 1) << (W - t[1])), t[1]))
    if kind == "ternary":
        return st.tuples(vals, vals).map(lambda t: None if t[1] == 0 else Ternary(t[0] & t[1], t[1]))
    if kind == "range":
        return st.tuples(vals, vals).map(lambda t: Range(min(t), max(t)))
    return st.one_of(st.none(), vals.map(OptionalMatch))


KINDS = [("exact",), ("exact", "exact"), ("lpm",), ("exact", "lpm"), ("ternary",), ("ternary", "range"),
         ("optional", "exact"), ("lpm", "ternary")]


@settings(max_examples=150, deadline=None)
@given(kinds=st.sampled_from(KINDS), data=st.data())
def test_lookup_agrees_with_brute_force(kinds: tuple[str, ...], data: st.DataObject) -> None:
    t = table(kinds)
    prio = any(k in ("ternary", "range", "optional") for k in kinds)
    inserted: list[TableEntry] = []
    for n in range(data.draw(st.integers(0, 25))):
        m = tuple(data.draw(field(k)) for k in kinds)
        e = TableEntry(m, "a", (n,), priority=data.draw(st.integers(1, 4)) if prio else 0)
        if t.get(m, e.priority) is None:
            t.insert(e)
            inserted.append(e)
    for e in list(inserted):
        if data.draw(st.booleans()) and data.draw(st.booleans()):
            t.delete(e.matches, e.priority)
            inserted.remove(e)
    for _ in range(20):
        key = tuple(data.draw(vals) for _ in kinds)
        assert t.lookup(key) is reference(inserted, key, kinds)


@settings(max_examples=150, deadline=None)
@given(kinds=st.sampled_from(KINDS), data=st.data())
def test_cached_lookup_never_stale(kinds: tuple[str, ...], data: st.DataObject) -> None:
    """Lookups interleaved with inserts, deletes, modifies and clears: the remembered
    results of lpm / ternary tables (Table.lookup_cache) always equal a fresh match,
    also when read directly as the generated packet path does."""
    t = table(kinds)
    prio = any(k in ("ternary", "range", "optional") for k in kinds)
    inserted: list[TableEntry] = []
    keys = [tuple(data.draw(vals) for _ in kinds) for _ in range(6)]  # few keys: cache hits
    for n in range(data.draw(st.integers(1, 40))):
        op = data.draw(st.sampled_from(("insert", "delete", "modify", "lookup", "lookup", "clear")))
        if op == "insert":
            m = tuple(data.draw(field(k)) for k in kinds)
            e = TableEntry(m, "a", (n,), priority=data.draw(st.integers(1, 4)) if prio else 0)
            if t.get(m, e.priority) is None:
                t.insert(e)
                inserted.append(e)
        elif op == "delete" and inserted:
            e = inserted.pop(data.draw(st.integers(0, len(inserted) - 1)))
            t.delete(e.matches, e.priority)
        elif op == "modify" and inserted:
            e = inserted[data.draw(st.integers(0, len(inserted) - 1))]
            t.modify(TableEntry(e.matches, "a", (n + 1000,), priority=e.priority))
        elif op == "clear" and data.draw(st.booleans()):
            t.clear()
            inserted.clear()
        for key in keys:
            want = reference(inserted, key, kinds)
            assert t.lookup(key) is want
            if t.lookup_cache is not None:
                assert t.lookup_cache.get(key, CACHE_MISS) is want
                assert want is None or want.args == t.get(want.matches, want.priority).args  # type: ignore[union-attr]


def test_lookup_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import softswitch.interp.tables as tables
    monkeypatch.setattr(tables, "LOOKUP_CACHE_MAX", 8)
    t = table(("lpm",))
    assert t.lookup_cache is not None
    t.insert(TableEntry((Lpm(0, 1),), "a", (1,)))
    for v in range(1 << W):
        assert (t.lookup((v,)) is None) == bool(v >> (W - 1))
        assert len(t.lookup_cache) <= 8
    assert table(("exact",)).lookup_cache is None  # exact tables: one dict get, no cache
