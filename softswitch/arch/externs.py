"""State of v1model extern instances: counters, registers, meters.

These objects are what ``CompiledProgram.instances`` holds; the P4Runtime layer reads
and writes them directly (``.packets[i]``, ``.bytes[i]``, ``.values[i]``, meter
configs), the pipeline updates them per packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CounterArray", "DirectCounter", "RegisterArray", "MeterConfig", "MeterArray",
    "DirectMeter", "ActionProfileState", "GREEN", "YELLOW", "RED",
]

GREEN, YELLOW, RED = 0, 1, 2


@dataclass(slots=True)
class CounterArray:
    """``counter(size, type)``. ``kind`` is "packets", "bytes" or "packets_and_bytes";
    both lists are always kept (the unused one stays 0), as BMv2 does."""

    name: str
    size: int
    kind: str
    packets: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.packets:
            self.packets = [0] * self.size
        if not self.bytes:
            self.bytes = [0] * self.size

    def count(self, index: int, nbytes: int) -> bool:
        """Count one packet of ``nbytes``; False (nothing counted) when the index is
        out of range (BMv2 logs an error and counts nothing)."""
        if not 0 <= index < self.size:
            return False
        self.packets[index] += 1
        self.bytes[index] += nbytes
        return True

    def reset(self) -> None:
        self.packets = [0] * self.size
        self.bytes = [0] * self.size


@dataclass(slots=True)
class DirectCounter:
    """``direct_counter(type)``: the counts live in the table entries
    (``TableEntry.packets`` / ``.bytes``), kept by the interpreter."""

    name: str
    kind: str
    table: str | None = None


@dataclass(slots=True)
class RegisterArray:
    """``register<T>(size)``; ``width`` is T's bit width, ``signed`` for int<W>."""

    name: str
    size: int
    width: int
    signed: bool = False
    values: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.values:
            self.values = [0] * self.size

    def normalize(self, value: int) -> int:
        """Truncate to the register width (and sign-extend for int<W>)."""
        value = int(value) & ((1 << self.width) - 1)
        if self.signed and value >> (self.width - 1):
            value -= 1 << self.width
        return value

    def read(self, index: int) -> int | None:
        """The value at ``index``, None when out of range (BMv2 leaves the destination
        unchanged and logs an error)."""
        if not 0 <= index < self.size:
            return None
        return self.values[index]

    def write(self, index: int, value: int) -> bool:
        """Write (truncated to the width); False and no effect when out of range."""
        if not 0 <= index < self.size:
            return False
        self.values[index] = self.normalize(value)
        return True

    def reset(self) -> None:
        self.values = [0] * self.size


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """Two-rate three-colour meter (RFC 2698) parameters in P4Runtime units:
    rates in units per second, bursts in units (bytes or packets)."""

    cir: int
    cburst: int
    pir: int
    pburst: int


@dataclass(slots=True)
class _Bucket:
    tc: float
    tp: float
    last_ns: int


@dataclass(slots=True)
class MeterArray:
    """``meter(size, type)``; ``kind`` is "packets" or "bytes". An index without a
    configuration marks every packet GREEN (as BMv2 does for an unconfigured meter)."""

    name: str
    size: int
    kind: str
    configs: list[MeterConfig | None] = field(default_factory=list)
    _buckets: list[_Bucket | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.configs:
            self.configs = [None] * self.size
        self._buckets = [None] * self.size

    def set_config(self, index: int, config: MeterConfig | None) -> None:
        if not 0 <= index < self.size:
            raise IndexError(f"meter {self.name}: index {index} out of range (size {self.size})")
        self.configs[index] = config
        self._buckets[index] = None

    def execute(self, index: int, nbytes: int, now_ns: int) -> int | None:
        """Colour of one packet (GREEN / YELLOW / RED); None when out of range."""
        if not 0 <= index < self.size:
            return None
        cfg = self.configs[index]
        if cfg is None:
            return GREEN
        amount = 1 if self.kind == "packets" else nbytes
        b = self._buckets[index]
        if b is None:
            b = self._buckets[index] = _Bucket(float(cfg.cburst), float(cfg.pburst), now_ns)
        dt = max(0, now_ns - b.last_ns) / 1e9
        b.last_ns = now_ns
        b.tc = min(float(cfg.cburst), b.tc + cfg.cir * dt)
        b.tp = min(float(cfg.pburst), b.tp + cfg.pir * dt)
        # RFC 2698 colour-blind mode
        if b.tp < amount:
            return RED
        if b.tc < amount:
            b.tp -= amount
            return YELLOW
        b.tp -= amount
        b.tc -= amount
        return GREEN

    def reset(self) -> None:
        self.configs = [None] * self.size
        self._buckets = [None] * self.size


@dataclass(slots=True)
class DirectMeter:
    """``direct_meter<T>(type)``; ``read()`` always yields GREEN (the interpreter does
    not tell the architecture which entry was hit; documented)."""

    name: str
    kind: str
    table: str | None = None


@dataclass(slots=True)
class ActionProfileState:
    """``action_profile(size)`` / ``action_selector(algo, size, width)``: the
    interpreter / runtime keep the members and groups; this records the parameters."""

    name: str
    size: int
    algorithm: str | None = None
    selector_width: int | None = None
