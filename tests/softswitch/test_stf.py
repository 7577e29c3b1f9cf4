"""Conformance corpus: tests/softswitch/programs/<name>.p4 run against <name>.stf.

STF as in p4c's BMv2 tests (backends/bmv2/run-bmv2-test.py): ``packet <port> <hex>``,
``expect <port> <hex>`` (``*`` is a wildcard nibble, a trailing ``$`` demands the exact
length, else the expectation is a prefix), ``add <table> [<priority>] <key>:<value> ...
<action>(<param>:<value>, ...)`` (lpm ``value/len``, ternary ``value&&&mask``, range
``lo..hi``), ``setdefault <table> <action>(...)``, ``mirroring_add <session> <port>``,
``mc_mgrp_create <grp>``, ``mc_node_create <rid> <port>...``, ``mc_node_associate <grp>
<node>``, ``check_counter <name>(<index>) packets|bytes == N``. softswitch extensions:
``expect_digest <struct> <values...>``, ``register_write <name> <index> <value>``,
``check_register <name> <index> == <value>``.

Outputs are matched per port in order; at the end every expectation must have been met
and no other packet or digest may have been produced.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from softswitch.device import CloneSession, Device, Replica
from softswitch.interp import tables as tb

PROGRAMS = Path(__file__).parent / "programs"
CASES = sorted(p.stem for p in PROGRAMS.glob("*.p4") if p.with_suffix(".stf").exists())


def _int(s: str) -> int:
    return int(s, 0)


def _resolve(names: Any, name: str, what: str) -> str:
    if name in names:
        return name
    cands = [n for n in names if n.endswith("." + name)]
    if len(cands) != 1:
        raise AssertionError(f"STF: unknown or ambiguous {what} {name!r} (have {sorted(names)})")
    return cands[0]


@dataclass
class StfRun:
    device: Device
    outputs: dict[int, deque[bytes]] = field(default_factory=lambda: defaultdict(deque))
    digests: deque[tuple[str, tuple[int, ...]]] = field(default_factory=deque)
    expects: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    expected_digests: list[tuple[int, str, tuple[int, ...]]] = field(default_factory=list)
    mc_nodes: list[tuple[int, list[int]]] = field(default_factory=list)
    auto_priority: int = 1 << 20

    def __post_init__(self) -> None:
        self.device.on_transmit = lambda port, frame: self.outputs[port].append(frame)
        self.device.on_digest = lambda name, values: self.digests.append((name, tuple(values)))

    @property
    def compiled(self) -> Any:
        assert self.device.program is not None
        return self.device.program.compiled

    # -------------------------------------------------------------- tables

    def _action(self, table: tb.Table, text: str, lineno: int) -> tuple[str, tuple[int, ...]]:
        m = re.fullmatch(r"\s*([\w.]+)\s*\((.*)\)\s*", text)
        assert m, f"line {lineno}: bad action call {text!r}"
        name = _resolve(table.action_params, m.group(1), "action")
        decl = self.compiled.actions[name]
        given: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in m.group(2).split(","))):
            k, _, v = part.partition(":")
            given[k.strip()] = _int(v.strip())
        args = []
        for p in decl.params:
            if p.direction:
                continue
            assert p.name in given, f"line {lineno}: action {name}: missing parameter {p.name}"
            args.append(given.pop(p.name))
        assert not given, f"line {lineno}: action {name}: unknown parameters {sorted(given)}"
        return name, tuple(args)

    def add(self, rest: str, lineno: int) -> None:
        tname, _, rest = rest.partition(" ")
        table = self.compiled.tables[_resolve(self.compiled.tables, tname, "table")]
        toks = rest.split()
        priority = None
        if toks and re.fullmatch(r"\d+", toks[0]):
            priority = int(toks.pop(0))
        idx = next(i for i, t in enumerate(toks) if "(" in t)
        keys, action_text = toks[:idx], " ".join(toks[idx:])
        key_names = [self._key_name(k) for k in table.decl.keys]
        matches: list[tb.FieldMatch] = [None] * len(key_names)
        for kv in keys:
            k, _, v = kv.rpartition(":")
            i = key_names.index(_resolve(key_names, k, "key field"))
            kind = table.key_kinds[i]
            if kind == "lpm":
                val, _, plen = v.partition("/")
                matches[i] = tb.Lpm(_int(val), int(plen) if plen else table.key_widths[i])
            elif kind == "ternary":
                val, _, mask = v.partition("&&&")
                matches[i] = tb.Ternary(_int(val), _int(mask) if mask else (1 << table.key_widths[i]) - 1)
            elif kind == "range":
                lo, _, hi = v.partition("..")
                matches[i] = tb.Range(_int(lo), _int(hi or lo))
            elif kind == "optional":
                matches[i] = tb.OptionalMatch(_int(v))
            else:
                matches[i] = tb.Exact(_int(v))
        for i, kind in enumerate(table.key_kinds):
            assert matches[i] is not None or kind != "exact", f"line {lineno}: missing exact key {key_names[i]}"
        action, args = self._action(table, action_text, lineno)
        prio = 0
        if table.needs_priority:
            # STF (BMv2 CLI) priorities: lower wins; P4Runtime/softswitch: higher wins
            if priority is not None:
                prio = (1 << 24) - priority
            else:
                prio, self.auto_priority = self.auto_priority, self.auto_priority - 1
        table.insert(tb.TableEntry(matches=tuple(matches), action=action, args=args, priority=prio))

    @staticmethod
    def _key_name(k: Any) -> str:
        for a in k.annotations:
            if a.name == "name" and a.args:
                return str(a.args[0])
        return str(k.source_text)

    # ----------------------------------------------------------- commands

    def run(self, text: str) -> None:
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            cmd, _, rest = line.partition(" ")
            rest = rest.strip()
            if cmd == "packet":
                port, _, data = rest.partition(" ")
                self.device.receive(int(port), bytes.fromhex(data.replace(" ", "")))
            elif cmd == "expect":
                port, _, data = rest.partition(" ")
                self.expects[int(port)].append((lineno, data.replace(" ", "").lower()))
            elif cmd == "add":
                self.add(rest, lineno)
            elif cmd == "setdefault":
                tname, _, action_text = rest.partition(" ")
                table = self.compiled.tables[_resolve(self.compiled.tables, tname, "table")]
                table.set_default(*self._action(table, action_text, lineno))
            elif cmd == "mirroring_add":
                sid, port = (int(x) for x in rest.split())
                self.device.clone_sessions[sid] = CloneSession([Replica(port, 0)])
            elif cmd == "mc_mgrp_create":
                self.device.multicast_groups.setdefault(int(rest), [])
            elif cmd == "mc_node_create":
                rid, *ports = (int(x) for x in rest.split())
                self.mc_nodes.append((rid, ports))
            elif cmd == "mc_node_associate":
                grp, node = (int(x) for x in rest.split())
                rid, ports = self.mc_nodes[node]
                self.device.multicast_groups[grp].extend(Replica(p, rid) for p in ports)
            elif cmd == "expect_digest":
                name, *vals = rest.split()
                self.expected_digests.append((lineno, name, tuple(_int(v) for v in vals)))
            elif cmd == "check_counter":
                m = re.fullmatch(r"([\w.]+)\((\d+)\)\s+(packets|bytes)\s*==\s*(\S+)", rest)
                assert m, f"line {lineno}: bad check_counter"
                c = self.compiled.instances[_resolve(self.compiled.instances, m.group(1), "counter")]
                got = getattr(c, m.group(3))[int(m.group(2))]
                assert got == _int(m.group(4)), f"line {lineno}: {rest}: got {got}"
            elif cmd == "register_write":
                name, idx, val = rest.split()
                r = self.compiled.instances[_resolve(self.compiled.instances, name, "register")]
                r.values[int(idx)] = r.normalize(_int(val))
            elif cmd == "check_register":
                m = re.fullmatch(r"([\w.]+)\s+(\d+)\s*==\s*(\S+)", rest)
                assert m, f"line {lineno}: bad check_register"
                r = self.compiled.instances[_resolve(self.compiled.instances, m.group(1), "register")]
                got = r.values[int(m.group(2))]
                assert got == _int(m.group(3)), f"line {lineno}: {rest}: got {got}"
            elif cmd == "wait":
                pass
            else:
                raise AssertionError(f"line {lineno}: unknown STF command {cmd!r}")

    def check(self) -> None:
        problems = []
        for port in sorted(set(self.expects) | set(self.outputs)):
            outs = self.outputs.get(port, deque())
            for lineno, pattern in self.expects.get(port, []):
                if not outs:
                    problems.append(f"line {lineno}: expected a packet on port {port}, got none")
                    continue
                got = outs.popleft().hex()
                if not _match(pattern, got):
                    problems.append(f"line {lineno}: port {port}:\n  expected {pattern}\n  got      {got}")
            problems.extend(f"unexpected packet on port {port}: {o.hex()}" for o in outs)
        for lineno, name, vals in self.expected_digests:
            if not self.digests:
                problems.append(f"line {lineno}: expected digest {name}{vals}, got none")
                continue
            got_d = self.digests.popleft()
            if got_d != (name, vals):
                problems.append(f"line {lineno}: expected digest {name}{vals}, got {got_d}")
        problems.extend(f"unexpected digest {d}" for d in self.digests)
        assert not problems, "\n".join(problems)


def _match(pattern: str, got: str) -> bool:
    exact = pattern.endswith("$")
    pattern = pattern.rstrip("$")
    if len(got) < len(pattern) or (exact and len(got) != len(pattern)):
        return False
    return all(p in ("*", g) for p, g in zip(pattern, got, strict=False))


def test_match_helper() -> None:
    assert _match("ab**", "abcdef")
    assert not _match("ab**$", "abcdef")
    assert not _match("ac", "ab")


@pytest.mark.parametrize("name", CASES)
def test_stf(name: str) -> None:
    src = (PROGRAMS / f"{name}.p4").read_text()
    dev = Device(device_id=1)
    dev.commit(Device.compile(src, str(PROGRAMS / f"{name}.p4")))
    run = StfRun(dev)
    run.run((PROGRAMS / f"{name}.stf").read_text())
    run.check()
    assert dev.stats()["error"] == 0
