"""Compare the P4Info a client sends with the one generated for the program."""

from __future__ import annotations

from typing import Any

from finsy.proto import p4i

__all__ = ["compare_p4info"]


def compare_p4info(expected: p4i.P4Info, given: p4i.P4Info) -> list[str]:
    """Differences in ids, names and shapes between the P4Info generated for a program
    and the one a client sent; empty when they agree."""
    problems: list[str] = []

    def objects(info: p4i.P4Info) -> dict[tuple[str, int], Any]:
        out: dict[tuple[str, int], Any] = {}
        for kind in ("tables", "actions", "counters", "direct_counters", "meters", "direct_meters",
                     "registers", "digests", "controller_packet_metadata", "value_sets", "action_profiles"):
            for o in getattr(info, kind):
                out[(kind, o.preamble.id)] = o
        return out

    exp, got = objects(expected), objects(given)
    for key in sorted(exp.keys() - got.keys()):
        problems.append(f"{key[0]} {exp[key].preamble.name!r} (id {key[1]}) missing from the P4Info sent")
    for key in sorted(got.keys() - exp.keys()):
        problems.append(f"{key[0]} {got[key].preamble.name!r} (id {key[1]}) is not in the program")
    for key in sorted(exp.keys() & got.keys()):
        e, g = exp[key], got[key]
        if e.preamble.name != g.preamble.name:
            problems.append(f"{key[0]} id {key[1]}: name {g.preamble.name!r}, the program has {e.preamble.name!r}")
        if key[0] == "tables":
            ef = [(m.id, m.name, m.bitwidth, m.match_type) for m in e.match_fields]
            gf = [(m.id, m.name, m.bitwidth, m.match_type) for m in g.match_fields]
            if ef != gf:
                problems.append(f"table {e.preamble.name}: match fields {gf}, the program has {ef}")
            eref = sorted((r.id, p4i.ActionRef.Scope.Name(r.scope)) for r in e.action_refs)
            gref = sorted((r.id, p4i.ActionRef.Scope.Name(r.scope) if r.scope in p4i.ActionRef.Scope.values()
                           else r.scope) for r in g.action_refs)
            if eref != gref:
                problems.append(f"table {e.preamble.name}: action refs (id, scope) {gref}, the program has {eref}")
            for attr in ("is_const_table", "idle_timeout_behavior", "const_default_action_id"):
                if getattr(e, attr) != getattr(g, attr):
                    problems.append(f"table {e.preamble.name}: {attr} {getattr(g, attr)}, "
                                    f"the program has {getattr(e, attr)}")
        elif key[0] in ("direct_counters", "direct_meters"):
            if e.direct_table_id != g.direct_table_id:
                problems.append(f"{key[0]} {e.preamble.name}: direct_table_id {g.direct_table_id}, "
                                f"the program has {e.direct_table_id}")
        elif key[0] in ("counters", "meters", "registers"):
            if e.size != g.size:
                problems.append(f"{key[0]} {e.preamble.name}: size {g.size}, the program has {e.size}")
            if key[0] == "registers" and e.type_spec != g.type_spec:
                problems.append(f"register {e.preamble.name}: type_spec differs from the program's")
        elif key[0] == "digests":
            if e.type_spec != g.type_spec:
                problems.append(f"digest {e.preamble.name}: type_spec differs from the program's")
        elif key[0] == "actions":
            ep = [(p.id, p.name, p.bitwidth) for p in e.params]
            gp = [(p.id, p.name, p.bitwidth) for p in g.params]
            if ep != gp:
                problems.append(f"action {e.preamble.name}: params {gp}, the program has {ep}")
        elif key[0] == "controller_packet_metadata":
            em = [(m.id, m.name, m.bitwidth) for m in e.metadata]
            gm = [(m.id, m.name, m.bitwidth) for m in g.metadata]
            if em != gm:
                problems.append(f"controller header {e.preamble.name}: metadata {gm}, the program has {em}")
    return problems
