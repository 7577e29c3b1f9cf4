"""Table state and the match engine (exact / lpm / ternary / range / optional).

Contract between the interpreter (which calls :meth:`Table.lookup` per packet) and the
P4Runtime layer (which inserts, modifies, deletes and reads entries). Keys and action
arguments are plain ints; the P4Runtime layer converts from/to byte strings.

TO BE IMPLEMENTED by the interpreter work (bodies marked NotImplementedError); the
signatures and the data classes are fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
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
FieldMatch = Union[Exact, Lpm, Ternary, Range, OptionalMatch, None]


@dataclass(slots=True)
class TableEntry:
    """A table entry. ``action`` is the control-plane action name (names.py); ``args``
    the action data in parameter order. ``packets``/``bytes`` are the direct counter,
    ``last_hit_ns`` is ``time.monotonic_ns()`` of the last hit (set to the insertion
    time on insert) and is what idle timeouts are computed from."""

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

    def insert(self, entry: TableEntry) -> None:
        """Add an entry (validates it; raises EntryExists for the same matches and
        priority, TableFull, EntryInvalid)."""
        raise NotImplementedError

    def modify(self, entry: TableEntry) -> TableEntry:
        """Replace action, args, idle_timeout_ns, controller_metadata and metadata of the
        entry with the same matches and priority; counters and last_hit_ns are kept.
        Returns the stored entry. Raises EntryNotFound / EntryInvalid."""
        raise NotImplementedError

    def delete(self, matches: tuple[FieldMatch, ...], priority: int) -> TableEntry:
        raise NotImplementedError

    def get(self, matches: tuple[FieldMatch, ...], priority: int) -> TableEntry | None:
        raise NotImplementedError

    def entries(self) -> Iterator[TableEntry]:
        """All non-default entries (const ones included), in insertion order."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def set_default(self, action: str, args: tuple[int, ...]) -> None:
        """Change the default action (EntryInvalid if it is const or not allowed)."""
        raise NotImplementedError

    def reset_default(self) -> None:
        """Back to the program's default action (P4Runtime MODIFY of the default entry
        with no action, or DELETE of the default entry)."""
        raise NotImplementedError

    def clear(self) -> None:
        """Remove all non-const entries and reset the default action."""
        raise NotImplementedError

    def lookup(self, key: tuple[int, ...]) -> TableEntry | None:
        """The matching entry for the key values (one int per key field), or None on a
        miss. Hot path: called once per packet per table apply."""
        raise NotImplementedError
