"""records.py: FlowRecord fields and the RecordBus fan-out."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from flow_support import codec, v4key, v6key
from p4fatflow.flowcodec import FlowContext
from p4fatflow.records import FlowRecord, Reason, RecordBus

S = 1_000_000_000


def rec(reason: Reason, ctx: FlowContext | None, end_ns: int = 1000 * S, v6: bool = False) -> FlowRecord:
    fc = codec()
    key = v6key() if v6 else v4key()
    return FlowRecord("sw1", fc.index_key(*fc.key_values(key)), ctx, 5, 600, end_ns, reason, fc)


def test_key_is_decoded_lazily_and_once() -> None:
    r = rec(Reason.IDLE, None, v6=True)
    assert r._key is None
    assert r.key == v6key()
    assert r.key is r.key


def test_idle_last_seen_is_end_minus_lifetime_not_before_first_seen() -> None:
    ctx = FlowContext(lifetime=60, first_seen_ns=900 * S)
    assert rec(Reason.IDLE, ctx).last_seen_ns == 940 * S
    short = FlowContext(lifetime=60, first_seen_ns=990 * S)  # installed less than a lifetime ago
    assert rec(Reason.IDLE, short).last_seen_ns == 990 * S
    assert rec(Reason.RECYCLED, ctx).last_seen_ns == 1000 * S
    assert rec(Reason.IDLE, None).last_seen_ns == 1000 * S
    assert rec(Reason.IDLE, None).first_seen_ns == 0


def test_to_dict() -> None:
    ctx = FlowContext(verdict_drop=False, mirror=True, offloaded=False, lifetime=30, vmi_id=7,
                      first_seen_ns=10 * S, info=b"\x01\x02")
    d = rec(Reason.FLUSHED, ctx).to_dict()
    assert d == {
        "switch": "sw1", "key": v4key().to_dict(), "reason": "flushed", "packets": 5, "bytes": 600,
        "first_seen_ns": 10 * S, "last_seen_ns": 1000 * S, "end_ns": 1000 * S, "vmi_id": 7, "lifetime": 30,
        "drop": False, "mirror": True, "offloaded": False, "info": "0102",
    }
    bare = rec(Reason.LIFETIME0, None).to_dict()
    assert (bare["vmi_id"], bare["lifetime"], bare["drop"], bare["info"]) == (0, None, None, "")
    assert "lifetime0" in repr(rec(Reason.LIFETIME0, None))


def test_bus_fans_out_counts_and_unsubscribes(caplog: pytest.LogCaptureFixture) -> None:
    bus = RecordBus()
    got_a: list[FlowRecord] = []
    got_b: list[FlowRecord] = []

    def broken(records: Sequence[FlowRecord]) -> None:
        raise RuntimeError("subscriber bug")

    unsub_a = bus.subscribe(got_a.extend)
    bus.subscribe(broken)
    bus.subscribe(got_b.extend)
    batch = [rec(Reason.IDLE, None), rec(Reason.DELETED, None)]
    with caplog.at_level(logging.ERROR, logger="p4fatflow.records"):
        bus.publish(batch)
    assert got_a == batch and got_b == batch and bus.published == 2
    assert "subscriber" in caplog.text
    bus.publish([])
    assert bus.published == 2
    unsub_a()
    unsub_a()  # twice is harmless
    bus.publish(batch[:1])
    assert len(got_a) == 2 and len(got_b) == 3 and bus.published == 3
