"""Differential test: the generated per-program packet path (arch/fastpath.py, the flat
code generator in interp/flat*.py) against the generic pipeline.

Every conformance program runs its STF script on two devices, one with the fast path
and one without, on the same stepping clock; then the same frames mutated (every
truncation, byte flips, other ports). After every frame the two must agree on every
transmitted frame, digest, device counter, table entry (action, data, direct
counters, last hit time), counter array and register cell. The fat-flow pipeline is
compared the same way on bench_pipeline's configuration and traffic (hits, misses,
L3 only)."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from softswitch.arch.externs import CounterArray, MeterArray, RegisterArray
from softswitch.device import Device
from tests.softswitch.test_stf import CASES, PROGRAMS, StfRun

REPO = Path(__file__).resolve().parents[3]

#: programs the fast path must take (the others use constructs it leaves to the
#: generic path: header lookahead, return in a control, header stacks)
FAST = {"acl", "digest", "ecmp", "l3_forward", "mcast_clone", "parser_error", "tunnel", "varbit_copy"}


def _clock() -> Any:
    t = [10**9]

    def now() -> int:
        t[0] += 1500
        return t[0]
    return now


def _device(src: str, filename: str, fast: bool, include: list[str] | None = None) -> Device:
    dev = Device(device_id=1)
    dev.fast_path = fast
    dev.clock_ns = _clock()
    dev.commit(Device.compile(src, filename, include or []))
    assert fast or dev._pipeline._fast is None
    return dev


def state(dev: Device) -> Any:
    """Everything a packet can change, as plain data."""
    assert dev.program is not None
    c = dev.program.compiled
    tables = {}
    for name, t in c.tables.items():
        d = t.default_entry
        tables[name] = ([(e.matches, e.priority, e.action, e.args, e.packets, e.bytes,
                          None if e.is_const else e.last_hit_ns)  # const: stamped at compile time
                         for e in t.entries()], (d.action, d.args, d.packets, d.bytes))
    inst: dict[str, Any] = {}
    for name, o in c.instances.items():
        if isinstance(o, CounterArray):
            inst[name] = (list(o.packets), list(o.bytes))
        elif isinstance(o, RegisterArray):
            inst[name] = list(o.values)
        elif isinstance(o, MeterArray):
            inst[name] = repr(vars(o)) if hasattr(o, "__dict__") else repr(o)
    return dict(dev.stats()), tables, inst


class _Pair:
    def __init__(self, fast: StfRun, slow: StfRun) -> None:
        self.runs = (fast, slow)

    def compare(self, what: str) -> None:
        f, s = self.runs
        assert dict(f.outputs) == dict(s.outputs), what
        assert list(f.digests) == list(s.digests), what
        assert state(f.device) == state(s.device), what


def _frames(stf: str) -> list[tuple[int, bytes]]:
    out = []
    for raw in stf.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("packet "):
            _, port, data = line.split(" ", 2)
            out.append((int(port), bytes.fromhex(data.replace(" ", ""))))
    return out


@pytest.mark.parametrize("name", CASES)
def test_stf_fast_equals_generic(name: str) -> None:
    src = (PROGRAMS / f"{name}.p4").read_text()
    fn = str(PROGRAMS / f"{name}.p4")
    fast, slow = StfRun(_device(src, fn, True)), StfRun(_device(src, fn, False))
    if name in FAST:
        assert fast.device._pipeline._fast is not None, fast.device._pipeline.fast_path_reason
    stf = (PROGRAMS / f"{name}.stf").read_text()
    fast.run(stf)
    slow.run(stf)
    pair = _Pair(fast, slow)
    pair.compare("STF script")
    fast.check()
    slow.check()
    # mutations of the script's frames: every truncation, random flips, other ports
    rng = random.Random(name)
    frames = _frames(stf)
    ports = sorted({p for p, _ in frames} | {0, 1, 2, 3, 5, 511})
    for i, (port, data) in enumerate(frames):
        muts = [data[:n] for n in range(0, len(data), max(1, len(data) // 24))]
        for _ in range(12):
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                if b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
            muts.append(bytes(b))
        for j, m in enumerate(muts):
            p = port if j % 3 else rng.choice(ports)
            for r in pair.runs:
                r.device.receive(p, m)
            pair.compare(f"frame {i} mutation {j} on port {p}: {m.hex()}")


def test_fatflow_fast_equals_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import bench_pipeline as bp  # type: ignore[import-not-found]

    benches = []
    for fast in ("1", "0"):
        monkeypatch.setenv("SOFTSWITCH_FAST_PATH", fast)
        monkeypatch.setattr(time, "monotonic_ns", _clock())  # the device's clock, same steps
        b = bp.setup()
        benches.append(b)
    assert benches[0].dev._pipeline._fast is not None, benches[0].dev._pipeline.fast_path_reason
    assert benches[1].dev._pipeline._fast is None
    outs: list[list[Any]] = [[], []]
    for k, b in enumerate(benches):
        b.dev.on_transmit = lambda port, frame, k=k: outs[k].append(("tx", port, frame))
        b.dev.on_digest = lambda name, vals, k=k: outs[k].append(("digest", name, tuple(vals)))
    hits, misses = bp.traffic(0), bp.traffic(1)
    rng = random.Random(7)
    extra = [f[:n] for f in hits[:8] for n in range(0, len(f), 7)]
    for f in hits[:40]:
        b2 = bytearray(f)
        b2[rng.randrange(14, len(b2))] ^= 1 << rng.randrange(8)
        extra.append(bytes(b2))
    for b in benches:
        bp.learn(b, hits)
        for f in hits + misses + extra:
            b.dev.receive(1, f)
            b.dev.receive(2, f)
    assert outs[0] == outs[1]
    assert state(benches[0].dev) == state(benches[1].dev)


def _csum(words: list[int]) -> int:
    s = sum(words)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def test_inlined_csum16_equals_generic() -> None:
    """The fast path writes verify_checksum / update_checksum (csum16 over scalar
    fields) out inline (V1Model.flat_function). IPv4 headers with right, wrong, 0x0000
    and 0xFFFF checksums, and with the other words summing to 0 mod 0xFFFF before or
    after the TTL decrement (the ones' complement zero case), through both paths."""
    name = "l3_forward"
    src = (PROGRAMS / f"{name}.p4").read_text()
    fn = str(PROGRAMS / f"{name}.p4")
    fast, slow = StfRun(_device(src, fn, True)), StfRun(_device(src, fn, False))
    assert fast.device._pipeline._fast is not None
    stf = (PROGRAMS / f"{name}.stf").read_text()
    fast.run(stf)
    slow.run(stf)
    pair = _Pair(fast, slow)
    eth = bytes.fromhex("0000000001000000000000aa0800")
    rng = random.Random(1624)
    for i in range(400):
        w = [0x4500 | rng.randrange(256), rng.randrange(1 << 16), rng.randrange(1 << 16), rng.randrange(1 << 16),
             (rng.randrange(2, 256) << 8) | rng.randrange(256), 0,
             rng.randrange(1 << 16), 0, 0x0A00, 0x0100 | rng.randrange(2)]
        if i % 4:  # the words other than the checksum sum to 0 mod 0xFFFF (before / after TTL - 1)
            w[7] = (-(sum(w) - (0x100 if i % 4 == 2 else 0))) % 0xFFFF
        else:
            w[7] = rng.randrange(1 << 16)
        for ck in (_csum(w), rng.randrange(1 << 16), 0, 0xFFFF):
            w[5] = ck
            frame = eth + b"".join(x.to_bytes(2, "big") for x in w) + bytes(rng.randrange(0, 8))
            for r in pair.runs:
                r.device.receive(1, frame)
            pair.compare(f"header {i} checksum {ck:#x}: {frame.hex()}")
