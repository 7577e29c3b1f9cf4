"""SwitchNode (node.py) against a fake session: what it writes when it applies a configuration, and in
which order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

from finsy.proto import p4r
from flow_support import build
from p4fatflow.node import SwitchNode
from p4fatflow.settings import parse_config

OK = 0

CONFIG = """
version: 1
flowtable: {{analyzer_port: 4}}
vns:
  - name: blue
    vrf: 10
    subnets: [10.0.0.0/8]
    rules:
      - {{protocol: udp, port: 53, ignore_address: dst, src_prefix_aggr: {{subnet: 10.0.0.0/8, plen: 28}}}}
switches:
  - name: sw1
    address: 127.0.0.1:9559
    device_id: 1
    p4info: {p4info}
    device_config: {device_config}
    router_mac: "02:00:00:00:00:aa"
    vmis:
      - {{name: vm1, port: 1, vn: blue, mac: "02:00:00:00:01:01", addresses: [10.0.0.3], mirror_new_flows: true}}
    fabric_ports: [{{port: 3, vn: blue}}]
"""


class RecordingSession:
    """Answers Reads with nothing (an empty switch) and records every Write's entities."""

    def __init__(self, schema: object) -> None:
        self.schema = schema
        self.writes: list[list[p4r.Update]] = []

    async def write(self, updates: Sequence[p4r.Update]) -> list[int]:
        self.writes.append(list(updates))
        return [OK] * len(updates)

    async def read(self, entities: Iterable[p4r.Entity]) -> AsyncIterator[p4r.Entity]:
        for _ in ():
            yield p4r.Entity()

    async def read_all(self, entities: Iterable[p4r.Entity]) -> list[p4r.Entity]:
        return []


def kinds(writes: list[list[p4r.Update]]) -> list[str]:
    out = []
    for w in writes:
        for u in w:
            which = u.entity.WhichOneof("entity")
            if which == "packet_replication_engine_entry":
                which = u.entity.packet_replication_engine_entry.WhichOneof("type")
            out.append(which or "?")
    return out


async def test_digest_and_clone_session_are_written_before_the_entries_that_make_misses() -> None:
    b = build()
    cfg = parse_config(CONFIG.format(p4info=b.p4info, device_config=b.device_config), "t.yaml", Path("/tmp"))
    node = SwitchNode(cfg, cfg.switch("sw1"))
    fake = RecordingSession(node.session.schema)
    node.session = fake  # type: ignore[assignment]
    report = await node._apply(cfg, cfg.switch("sw1"), flush=False)
    assert report.failed == 0 and report.inserted == report.entries > 0
    order = kinds(fake.writes)
    # A restarted switch must report every miss from the moment the port entries exist: the
    # DigestEntry goes first (then the clone session the mirror entries use), then the table entries.
    first_table = order.index("table_entry")
    assert order.index("digest_entry") < first_table and order.index("clone_session_entry") < first_table
    assert order.count("table_entry") == report.inserted
