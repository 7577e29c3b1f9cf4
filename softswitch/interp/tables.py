"""Table state and the match engine (exact / lpm / ternary / range / optional).

Contract between the interpreter (which calls :meth:`Table.lookup` per packet) and the
P4Runtime layer (which inserts, modifies, deletes and reads entries). Keys and action
arguments are plain ints; the P4Runtime layer converts from/to byte strings.

Match structures: exact-only tables keep a dict keyed by the value tuple; tables whose
only non-exact key is lpm keep one dict per prefix length, probed longest first;
tables with ternary/range/optional keys keep a list sorted by (-priority, insertion
sequence) and compare a packed (key & mask) == value per entry, ranges checked apart.
lpm and ternary tables remember the result (entry or miss) of the last keys looked up
(``lookup_cache``, at most ``LOOKUP_CACHE_MAX`` keys); any insert or delete empties it.
"""

from __future__ import annotations

import time
from bisect import insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Union

from softswitch import ir

__all__ = [
    "Exact", "Lpm", "Ternary", "Range", "OptionalMatch", "FieldMatch", "TableEntry", "Table",
    "TableError", "EntryExists", "EntryNotFound", "TableFull", "EntryInvalid",
]


@dataclass(frozen=True, slots=True)
class Exact:
    value: int


@dataclass(frozen=True, slots=True)
class Lpm:
    value: int  # bits beyond plen must be 0
    plen: int


@dataclass(frozen=True, slots=True)
class Ternary:
    value: int  # value & ~mask must be 0
    mask: int


@dataclass(frozen=True, slots=True)
class Range:
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class OptionalMatch:
    value: int


#: one per key field; ``None`` is a don't-care (wildcard) for lpm/ternary/range/optional
FieldMatch = Union[Exact, Lpm, Ternary, Range, OptionalMatch, None]  # noqa: UP007

#: keys remembered per lpm / ternary table (the cache is emptied when it is full)
LOOKUP_CACHE_MAX = 8192
#: what ``lookup_cache.get(key, CACHE_MISS)`` returns for a key not remembered
CACHE_MISS: object = object()


@dataclass(slots=True)
class TableEntry:
    """A table entry. ``action`` is the control-plane action name (names.py); ``args``
    the action data in parameter order. ``packets``/``bytes`` are the direct counter,
    ``last_hit_ns`` is the time of the last hit (set to the insertion time on insert) on
    the table's clock (``Table.clock_ns``: ``time.monotonic_ns`` unless the device sets
    its own, the clock packet arrival times come from) and is what idle timeouts are
    computed from."""

    matches: tuple[FieldMatch, ...]
    action: str
    args: tuple[int, ...] = ()
    priority: int = 0
    idle_timeout_ns: int = 0
    controller_metadata: int = 0
    metadata: bytes = b""
    packets: int = 0
    bytes: int = 0
    last_hit_ns: int = 0
    is_const: bool = False
    #: set by the runtime to throttle idle notifications (BMv2 re-notifies while idle)
    last_notified_ns: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class TableError(Exception):
    """Base of table errors; ``str(e)`` is a message naming the table and the problem."""


class EntryExists(TableError):
    pass


class EntryNotFound(TableError):
    pass


class TableFull(TableError):
    pass


class EntryInvalid(TableError):
    """Malformed entry: wrong number of matches, wrong match kind for a key, value out
    of the key width, lpm/ternary value with bits outside the prefix/mask, range lo > hi,
    missing priority where one is required, unknown action, wrong number of args,
    modifying a const default action, ..."""


def _key_name(k: ir.TableKey) -> str:
    a = ir.annotation(k.annotations, "name")
    if a is not None and a.args and isinstance(a.args[0], str):
        return a.args[0]
    return k.source_text


_MATCH_CLASS: dict[str, type] = {
    "exact": Exact, "lpm": Lpm, "ternary": Ternary, "range": Range, "optional": OptionalMatch,
}


class Table:
    """One table instance.

    * ``name``: control-plane name; ``decl``: its IR declaration.
    * ``key_kinds`` / ``key_widths``: per key field match kind and bit width.
    * ``action_params``: control-plane action name -> tuple of parameter widths, for the
      actions in the table's ``actions`` list (the default action included).
    * ``needs_priority``: True when a key is ternary, range or optional (P4Runtime
      requires priority > 0 then; higher priority wins; among equal priorities the
      entry inserted first wins). A table whose only non-exact key is lpm does longest
      prefix match (priority must be 0). Exact-only tables use a dict.
    * ``size``: capacity; ``insert`` raises TableFull beyond it (const entries count).
    * ``default_entry``: the entry applied on a miss (``matches == ()``).

    Construction (used by the compiler, usable directly in tests)::

        Table(name, decl, key_widths, action_params, default_action, default_args,
              default_is_const=False, size=None, table_only=(), default_only=())

    ``key_kinds`` come from ``decl.keys``; ``size`` None means ``decl.size`` or 1024 (the
    BMv2 default); ``table_only`` / ``default_only`` are control-plane action names
    annotated @tableonly / @defaultonly in the actions list. Const entries are installed
    by the caller with ``insert(TableEntry(..., is_const=True))``.

    ``lookup`` is rebound per instance to the fastest routine for the table's kind (a
    bare ``dict.get`` for exact tables), so calling ``table.lookup(key)`` costs one call.
    """

    name: str
    decl: ir.TableDecl
    key_kinds: tuple[str, ...]
    key_widths: tuple[int, ...]
    action_params: dict[str, tuple[int, ...]]
    needs_priority: bool
    size: int
    default_entry: TableEntry
    default_is_const: bool

    def __init__(self, name: str, decl: ir.TableDecl, key_widths: tuple[int, ...],
                 action_params: dict[str, tuple[int, ...]], default_action: str,
                 default_args: tuple[int, ...] = (), default_is_const: bool = False,
                 size: int | None = None, table_only: Iterable[str] = (),
                 default_only: Iterable[str] = ()) -> None:
        self.name = name
        self.decl = decl
        #: the clock of insertion times (last_hit_ns); a Device sets it to the clock its
        #: pipeline stamps packet arrivals (table hits) with, so the two never mix
        self.clock_ns: Callable[[], int] = time.monotonic_ns
        self.key_kinds = tuple(k.match_kind for k in decl.keys)
        self.key_widths = tuple(key_widths)
        if len(self.key_widths) != len(self.key_kinds):
            raise ValueError(f"table {name}: {len(self.key_kinds)} keys but {len(self.key_widths)} widths")
        self.key_names = tuple(_key_name(k) for k in decl.keys)
        self.action_params = dict(action_params)
        self.table_only = frozenset(table_only)
        self.default_only = frozenset(default_only)
        self.needs_priority = any(k in ("ternary", "range", "optional") for k in self.key_kinds)
        self.size = size if size is not None else (decl.size if decl.size is not None else 1024)
        for kind, kname in zip(self.key_kinds, self.key_names, strict=False):
            if kind not in _MATCH_CLASS:
                raise EntryInvalid(f"table {name}: match kind {kind!r} of key {kname} is not supported")
        self._program_default = (default_action, tuple(default_args))
        self.default_is_const = default_is_const
        self._check_action(default_action, tuple(default_args), default=True)
        self.default_entry = TableEntry((), default_action, tuple(default_args), is_const=default_is_const)
        self._entries: dict[tuple[tuple[FieldMatch, ...], int], TableEntry] = {}
        self._seq = 0
        self._full_masks = tuple((1 << w) - 1 for w in self.key_widths)
        lpm = [i for i, k in enumerate(self.key_kinds) if k == "lpm"]
        #: key tuple -> the entry it matched or None (a miss); lpm and ternary tables
        #: only (None for exact ones). Emptied in place (never replaced) by every insert
        #: and delete, so callers may hold it: ``lookup_cache.get(key, CACHE_MISS)``,
        #: and ``lookup(key)`` when CACHE_MISS comes back.
        self.lookup_cache: dict[tuple[int, ...], TableEntry | None] | None = None
        if self.needs_priority or len(lpm) > 1:
            self._mode = "ternary"
            self._sorted: list[tuple[int, int, int, int, tuple[tuple[int, int, int], ...], TableEntry]] = []
            self._seqs: dict[int, int] = {}
            self.lookup = self._cached(self._lookup_ternary)  # type: ignore[method-assign,assignment]
        elif lpm:
            self._mode = "lpm"
            self._lpm_idx = lpm[0]
            self._levels: dict[int, dict[tuple[int, ...], TableEntry]] = {}
            self._probe: list[tuple[int, dict[tuple[int, ...], TableEntry]]] = []
            self.lookup = self._cached(  # type: ignore[method-assign,assignment]
                self._lookup_lpm1 if len(self.key_kinds) == 1 else self._lookup_lpm)
        else:
            self._mode = "exact"
            self._exact: dict[tuple[int, ...], TableEntry] = {}
            self.lookup = self._exact.get  # type: ignore[method-assign,assignment]

    # ------------------------------------------------------------------ validation

    def _check_action(self, action: str, args: tuple[int, ...], default: bool) -> None:
        widths = self.action_params.get(action)
        if widths is None:
            raise EntryInvalid(f"table {self.name}: action {action!r} is not in the table's actions "
                               f"({', '.join(sorted(self.action_params)) or 'none'})")
        if default and action in self.table_only:
            raise EntryInvalid(f"table {self.name}: action {action} is @tableonly, not a default action")
        if not default and action in self.default_only:
            raise EntryInvalid(f"table {self.name}: action {action} is @defaultonly, not for entries")
        if len(args) != len(widths):
            raise EntryInvalid(f"table {self.name}: action {action} takes {len(widths)} args, "
                               f"got {len(args)}")
        for i, (a, w) in enumerate(zip(args, widths, strict=False)):
            if not isinstance(a, int) or a < 0 or a >> w:
                raise EntryInvalid(f"table {self.name}: action {action} arg {i} = {a!r} "
                                   f"does not fit bit<{w}>")

    def _check_entry(self, entry: TableEntry) -> None:
        m = entry.matches
        if len(m) != len(self.key_kinds):
            raise EntryInvalid(f"table {self.name}: {len(m)} match fields given, the table has "
                               f"{len(self.key_kinds)} keys")
        for fm, kind, w, kname in zip(m, self.key_kinds, self.key_widths, self.key_names, strict=False):
            where = f"table {self.name}: key {kname} ({kind}, bit<{w}>)"
            if fm is None:
                if kind == "exact":
                    raise EntryInvalid(f"{where}: an exact key cannot be a wildcard")
                continue
            if type(fm) is not _MATCH_CLASS[kind]:
                raise EntryInvalid(f"{where}: got a {type(fm).__name__} match")
            lim = 1 << w
            if isinstance(fm, (Exact, OptionalMatch)):
                if not 0 <= fm.value < lim:
                    raise EntryInvalid(f"{where}: value {fm.value:#x} out of range")
            elif isinstance(fm, Lpm):
                if not 0 <= fm.plen <= w:
                    raise EntryInvalid(f"{where}: prefix length {fm.plen} out of range")
                if not 0 <= fm.value < lim or fm.value & ((1 << (w - fm.plen)) - 1):
                    raise EntryInvalid(f"{where}: value {fm.value:#x} has bits outside /{fm.plen}")
            elif isinstance(fm, Ternary):
                if not 0 <= fm.mask < lim or not 0 <= fm.value < lim:
                    raise EntryInvalid(f"{where}: value/mask out of range")
                if fm.value & ~fm.mask:
                    raise EntryInvalid(f"{where}: value {fm.value:#x} has bits outside mask {fm.mask:#x}")
            elif isinstance(fm, Range):
                if not 0 <= fm.lo < lim or not 0 <= fm.hi < lim:
                    raise EntryInvalid(f"{where}: range bound out of range")
                if fm.lo > fm.hi:
                    raise EntryInvalid(f"{where}: range lo {fm.lo} > hi {fm.hi}")
        if self.needs_priority:
            if entry.priority <= 0:
                raise EntryInvalid(f"table {self.name}: entries need a priority > 0 (ternary/range/optional keys)")
        elif entry.priority != 0:
            raise EntryInvalid(f"table {self.name}: priority must be 0 for exact/lpm tables, got {entry.priority}")
        self._check_action(entry.action, tuple(entry.args), default=False)

    # ------------------------------------------------------------------ structure

    def _lpm_key(self, m: tuple[FieldMatch, ...]) -> tuple[int, tuple[int, ...]]:
        i = self._lpm_idx
        plen = 0
        vals: list[int] = []
        for j, fm in enumerate(m):
            if j == i:
                if isinstance(fm, Lpm):
                    plen = fm.plen
                    vals.append(fm.value)
                else:
                    vals.append(0)
            else:
                assert isinstance(fm, Exact)
                vals.append(fm.value)
        return plen, tuple(vals)

    def _rebuild_probe(self) -> None:
        w = self.key_widths[self._lpm_idx]
        full = (1 << w) - 1
        self._probe = [(full ^ ((1 << (w - p)) - 1), d)
                       for p, d in sorted(self._levels.items(), reverse=True) if d]

    def _compile_ternary(self, entry: TableEntry, seq: int) -> tuple:
        mask = 0
        value = 0
        ranges: list[tuple[int, int, int]] = []
        for j, (fm, w) in enumerate(zip(entry.matches, self.key_widths, strict=False)):
            mask <<= w
            value <<= w
            if fm is None:
                continue
            if isinstance(fm, (Exact, OptionalMatch)):
                mask |= (1 << w) - 1
                value |= fm.value
            elif isinstance(fm, Lpm):
                mask |= ((1 << w) - 1) ^ ((1 << (w - fm.plen)) - 1)
                value |= fm.value
            elif isinstance(fm, Ternary):
                mask |= fm.mask
                value |= fm.value
            elif isinstance(fm, Range):
                ranges.append((j, fm.lo, fm.hi))
        return (-entry.priority, seq, mask, value, tuple(ranges), entry)

    def _cached(self, match: Callable[[tuple[int, ...]], TableEntry | None]
                ) -> Callable[[tuple[int, ...]], TableEntry | None]:
        """``match`` remembering its results in ``lookup_cache``."""
        cache: dict[tuple[int, ...], TableEntry | None] = {}
        self.lookup_cache = cache

        def lookup(key: tuple[int, ...]) -> TableEntry | None:
            e = cache.get(key, CACHE_MISS)
            if e is CACHE_MISS:
                e = match(key)
                if len(cache) >= LOOKUP_CACHE_MAX:
                    cache.clear()
                cache[key] = e
            return e  # type: ignore[return-value]
        return lookup

    def _add(self, entry: TableEntry) -> None:
        if self.lookup_cache is not None:
            self.lookup_cache.clear()
        if self._mode == "exact":
            self._exact[tuple(fm.value for fm in entry.matches)] = entry  # type: ignore[union-attr]
        elif self._mode == "lpm":
            plen, k = self._lpm_key(entry.matches)
            lvl = self._levels.setdefault(plen, {})
            lvl[k] = entry
            if len(lvl) == 1:
                self._rebuild_probe()
        else:
            self._seq += 1
            self._seqs[id(entry)] = self._seq
            insort(self._sorted, self._compile_ternary(entry, self._seq), key=lambda t: (t[0], t[1]))

    def _remove(self, entry: TableEntry) -> None:
        if self.lookup_cache is not None:
            self.lookup_cache.clear()
        if self._mode == "exact":
            del self._exact[tuple(fm.value for fm in entry.matches)]  # type: ignore[union-attr]
        elif self._mode == "lpm":
            plen, k = self._lpm_key(entry.matches)
            lvl = self._levels[plen]
            del lvl[k]
            if not lvl:
                del self._levels[plen]
                self._rebuild_probe()
        else:
            self._seqs.pop(id(entry), None)
            self._sorted = [t for t in self._sorted if t[5] is not entry]

    # ------------------------------------------------------------------ API

    def insert(self, entry: TableEntry) -> None:
        """Add an entry (validates it; raises EntryExists for the same matches and
        priority, TableFull, EntryInvalid). Sets ``last_hit_ns`` to now."""
        self._check_entry(entry)
        ident = (tuple(entry.matches), entry.priority)
        if ident in self._entries:
            raise EntryExists(f"table {self.name}: an entry with these matches and priority "
                              f"{entry.priority} exists")
        if len(self._entries) >= self.size:
            raise TableFull(f"table {self.name}: full ({self.size} entries)")
        entry.args = tuple(entry.args)
        entry.last_hit_ns = self.clock_ns()
        self._entries[ident] = entry
        self._add(entry)

    def modify(self, entry: TableEntry) -> TableEntry:
        """Replace action, args, idle_timeout_ns, controller_metadata and metadata of the
        entry with the same matches and priority; counters and last_hit_ns are kept.
        Returns the stored entry. Raises EntryNotFound / EntryInvalid."""
        self._check_entry(entry)
        stored = self._entries.get((tuple(entry.matches), entry.priority))
        if stored is None:
            raise EntryNotFound(f"table {self.name}: no entry with these matches and priority {entry.priority}")
        if stored.is_const:
            raise EntryInvalid(f"table {self.name}: const entries cannot be modified")
        stored.action = entry.action
        stored.args = tuple(entry.args)
        stored.idle_timeout_ns = entry.idle_timeout_ns
        stored.controller_metadata = entry.controller_metadata
        stored.metadata = entry.metadata
        return stored

    def delete(self, matches: tuple[FieldMatch, ...], priority: int) -> TableEntry:
        ident = (tuple(matches), priority)
        stored = self._entries.get(ident)
        if stored is None:
            raise EntryNotFound(f"table {self.name}: no entry with these matches and priority {priority}")
        if stored.is_const:
            raise EntryInvalid(f"table {self.name}: const entries cannot be deleted")
        del self._entries[ident]
        self._remove(stored)
        return stored

    def get(self, matches: tuple[FieldMatch, ...], priority: int) -> TableEntry | None:
        return self._entries.get((tuple(matches), priority))

    def entries(self) -> Iterator[TableEntry]:
        """All non-default entries (const ones included), in insertion order."""
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def set_default(self, action: str, args: tuple[int, ...]) -> None:
        """Change the default action (EntryInvalid if it is const or not allowed).
        The default entry object is kept (its counters survive)."""
        if self.default_is_const:
            raise EntryInvalid(f"table {self.name}: the default action is const")
        args = tuple(args)
        self._check_action(action, args, default=True)
        self.default_entry.action = action
        self.default_entry.args = args

    def reset_default(self) -> None:
        """Back to the program's default action (P4Runtime MODIFY of the default entry
        with no action, or DELETE of the default entry)."""
        self.default_entry.action, self.default_entry.args = self._program_default

    def clear(self) -> None:
        """Remove all non-const entries and reset the default action."""
        for ident, e in list(self._entries.items()):
            if not e.is_const:
                del self._entries[ident]
                self._remove(e)
        self.reset_default()

    def lookup(self, key: tuple[int, ...]) -> TableEntry | None:
        """The matching entry for the key values (one int per key field), or None on a
        miss. Hot path: called once per packet per table apply. (Replaced per instance
        in ``__init__`` by the routine for the table's kind.)"""
        return self.lookup(key)  # pragma: no cover - shadowed by the instance attribute

    def _lookup_lpm1(self, key: tuple[int, ...]) -> TableEntry | None:
        v = key[0]
        for mask, d in self._probe:
            e = d.get((v & mask,))
            if e is not None:
                return e
        return None

    def _lookup_lpm(self, key: tuple[int, ...]) -> TableEntry | None:
        i = self._lpm_idx
        pre = key[:i]
        post = key[i + 1:]
        v = key[i]
        for mask, d in self._probe:
            e = d.get((*pre, v & mask, *post))
            if e is not None:
                return e
        return None

    def _lookup_ternary(self, key: tuple[int, ...]) -> TableEntry | None:
        packed = 0
        for v, w in zip(key, self.key_widths, strict=False):
            packed = (packed << w) | v
        for _p, _s, mask, value, ranges, e in self._sorted:
            if packed & mask == value:
                if ranges:
                    for j, lo, hi in ranges:
                        if not lo <= key[j] <= hi:
                            break
                    else:
                        return e
                else:
                    return e
        return None
