"""Hostile configurations given to a running fatflowd, through the API's ApplyConfig/ValidateConfig and
through SIGHUP on the real ``fatflowd`` process: invalid YAML, wrong types, out-of-range values,
conflicting rules, unknown fields, dangerous YAML (python tags, alias bombs, deep nesting), huge
files, and a configuration that does not fit the switch's tables (more rule rows than the rule tables
hold, sizes from the P4Info). Each is refused with an error naming the place (file:line: path), and
the running state is intact: every table of the switch, read before and after by a plain P4Runtime
client, is the same, and so is the running configuration."""

from __future__ import annotations

import asyncio
import copy
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from apitest import api_config
from ffd import config_dict, eventually, fatflowd_process, running_fatflowd, write_config
from p4fatflow.api.client import AsyncFatflowClient, FatflowError
from p4fatflow.settings import ConfigFileError, parse_config
from robusttools import entry_set, read_entries
from targets import SwitchProcess

from softswitch.launch import PipelineBuild


def _vmi(doc: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return doc["switches"][0]["vmis"][i]  # type: ignore[no-any-return]


def _set(doc: dict[str, Any], fn: Any) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    fn(d)
    return d


def _too_many_rules(d: dict[str, Any]) -> None:
    # 4,200 distinct rules on one VMI: 4,200 rows in rule_v4 (and the port-match tables), which hold 4,096
    _vmi(d)["rules"] = [{"protocol": "udp", "port": p} for p in range(1, 4201)]


def hostile_cases(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, YAML text, a substring the error must contain: the place and/or the reason)."""
    good = yaml.safe_dump(doc, sort_keys=False)

    def dump(d: dict[str, Any]) -> str:
        return yaml.safe_dump(d, sort_keys=False)

    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + good
    deep = good + "policy_extra: " + "[" * 40 + "]" * 40 + "\n"
    return [
        ("invalid YAML", good + "switches: [\n  - {name: x\n", ":"),
        ("not a mapping", "- 1\n- 2\n", ""),
        ("empty", "", "empty"),
        ("wrong version", good.replace("version: 1", "version: 2", 1), "version"),
        ("wrong type", dump(_set(doc, lambda d: d["flowtable"].update(max_flows="lots"))), "flowtable.max_flows"),
        ("out of range vrf", dump(_set(doc, lambda d: d["vns"][0].update(vrf=70000))), "vns[0].vrf"),
        ("out of range port", dump(_set(doc, lambda d: _vmi(d).update(port=600))), "switches[0].vmis[0].port"),
        ("negative lifetime", dump(_set(doc, lambda d: d["flowtable"]["lifetime"].update(default=-5))),
         "flowtable.lifetime.default"),
        ("max_flows beyond the flow tables", dump(_set(doc, lambda d: d["flowtable"].update(max_flows=200000))),
         "flowtable.max_flows"),
        ("unknown field", dump(_set(doc, lambda d: d["flowtable"].update(max_flow=5))), "did you mean 'max_flows'"),
        ("conflicting rules", dump(_set(doc, lambda d: _vmi(d).update(rules=[
            {"protocol": "udp", "port": 53}, {"protocol": "udp", "port": 53, "ignore_address": "dst"}]))),
         "switches[0].vmis[0].rules"),
        ("port used twice", dump(_set(doc, lambda d: _vmi(d, 1).update(port=1))), "switches[0].vmis[1].port"),
        ("unknown vn", dump(_set(doc, lambda d: _vmi(d).update(vn="bleu"))), "did you mean 'blue'"),
        ("bad mac", dump(_set(doc, lambda d: _vmi(d).update(mac="02:00:00:00:01"))), "switches[0].vmis[0].mac"),
        ("python tag", good + "x: !!python/object/apply:os.system ['touch /tmp/pwned-by-fatflow']\n", "tag"),
        ("alias bomb", bomb, "alias"),
        ("deep nesting", deep, "deep"),
        ("duplicate key", good + "version: 1\n", "version"),
        ("does not fit the rule tables", dump(_set(doc, _too_many_rules)), "which holds 4096"),
    ]


def test_a_configuration_beyond_the_table_sizes_is_refused_naming_the_table(ff_build: PipelineBuild) -> None:
    """A validation gap closed in settings.py: rows are counted per table against the P4Info's sizes
    (before, 4,200 rules were accepted and the Write failed half-way, RESOURCE_EXHAUSTED)."""

    class _Sw:
        address, device_id, cpu_port = "127.0.0.1:1", 1, 255

    doc = config_dict([("sw1", _Sw(), 1)], ff_build)  # type: ignore[list-item]
    with pytest.raises(ConfigFileError) as err:
        parse_config(yaml.safe_dump(_set(doc, _too_many_rules)), "big.yaml")
    text = str(err.value)
    assert "big.yaml:" in text and "switches[0]: switch sw1 needs 4200 entries in table ingress.fatflow.rule_v4, " \
        "which holds 4096" in text
    ok = _set(doc, lambda d: _vmi(d).update(rules=[{"protocol": "udp", "port": p} for p in range(1, 4001)]))
    assert parse_config(yaml.safe_dump(ok), "fits.yaml").switches[0].vmis[0].vmi.rules[-1].port == 4000


async def test_hostile_configurations_through_apply_config_change_nothing(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    path, address = api_config(tmp_path, switch, ff_build)
    doc = yaml.safe_load(path.read_text())
    async with running_fatflowd(path) as daemon, AsyncFatflowClient(address, timeout=60) as ff:
        before = entry_set(await read_entries(switch))
        config_before = (await ff.get_config()).yaml
        tried = 0
        for name, text, expect in hostile_cases(doc):
            v = await ff.validate_config(text, f"{name}.yaml")
            r = await ff.apply_config(text, f"{name}.yaml")
            for answer in (v, r):
                assert not answer.valid, f"{name}: accepted"
                msgs = [f"{p.file}:{p.line}: {p.path}: {p.message}" for p in answer.problems]
                assert msgs and all(p.file == f"{name}.yaml" for p in answer.problems), (name, msgs)
                assert any(expect in m for m in msgs), f"{name}: {expect!r} not in {msgs}"
            assert not r.switches, name
            tried += 1
        # a huge text: over the file limit (8 MiB) -> refused without being parsed
        huge = yaml.safe_dump(doc) + "#" * (9 << 20) + "\n"
        try:
            r = await ff.apply_config(huge, "huge.yaml")
        except FatflowError as exc:  # the gRPC message limit may refuse it first: also a clear refusal
            assert exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
        else:
            assert not r.valid and "larger than 8388608 bytes" in " ".join(p.message for p in r.problems)
        tried += 1
        after = entry_set(await read_entries(switch))
        assert after == before, "the switch's tables changed"
        assert (await ff.get_config()).yaml == config_before and daemon.reloads == 0
        assert all(n.session.is_primary and n.ready.is_set() for n in daemon.nodes.values())
        print(f"hostile configurations refused through ApplyConfig/ValidateConfig: {tried}")


async def test_hostile_files_through_sighup_change_nothing(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    cfg = tmp_path / "ff.yaml"
    doc = config_dict([("sw1", switch, 10)], ff_build)
    write_config(cfg, doc)
    log = tmp_path / "fatflowd.log"
    with fatflowd_process(cfg, log) as proc:
        await eventually(lambda: "configuration entries" in log.read_text(), 30, "fatflowd applied its configuration")
        before = entry_set(await read_entries(switch))
        cases = [(n, t.encode(), e) for n, t, e in hostile_cases(doc)
                 if n in ("invalid YAML", "wrong type", "conflicting rules", "unknown field", "python tag",
                          "does not fit the rule tables")]
        cases += [("not UTF-8", b"version: 1\n\xff\xfe\x00garbage\n", "not UTF-8"),
                  ("huge", yaml.safe_dump(doc).encode() + b"#" * (9 << 20), "larger than 8388608 bytes")]
        for i, (name, data, expect) in enumerate(cases, 1):
            cfg.write_bytes(data)
            proc.send_signal(signal.SIGHUP)
            await eventually(lambda n=i: log.read_text().count("reload refused") == n, 30,  # type: ignore[misc]
                             f"{name} refused")
            text = log.read_text().split("reload refused")[-1]
            assert str(cfg) in text and expect in text, (name, text[:800])
        assert proc.poll() is None
        assert entry_set(await read_entries(switch)) == before, "the switch's tables changed"
        # the process still applies a good file on SIGHUP
        write_config(cfg, _set(doc, lambda d: _vmi(d, 1).update(rules=[{"protocol": "tcp", "port": 22}])))
        proc.send_signal(signal.SIGHUP)
        await eventually(lambda: "reload: switch sw1:" in log.read_text(), 30, "the good file applied")
        await asyncio.sleep(0.2)
        assert entry_set(await read_entries(switch)) != before
        assert "Traceback" not in log.read_text()
