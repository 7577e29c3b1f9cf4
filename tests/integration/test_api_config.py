"""The configuration, statistics and service calls of the fatflowd API against fatflowd + a real target:
GetConfig, ValidateConfig, ApplyConfig (a diff, counts per switch), ConfigureFlowtable (seed 000's
flowtable_conf at run time), ListPorts, GetStats; health checking, reflection, the bearer token
(no state changed without it) and TLS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
import yaml
from apitest import TOKEN, api_daemon
from ffd import eventually, frame, send_paced, switch_flows
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from p4fatflow.api.client import AsyncFatflowClient, FatflowError, InvalidArgument, NotFound, Unauthenticated
from p4fatflow.api.pb import pb
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

VM1, VM2, FABRIC = 1, 2, 3


async def test_get_validate_and_apply_config_as_a_diff(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        got = await ff.get_config()
        assert got.source == str(tmp_path / "fatflowd.yaml")
        doc = yaml.safe_load(got.yaml)
        assert [s["name"] for s in doc["switches"]] == ["sw1"] and doc["switches"][0]["flowtable"]["max_flows"] == 1000
        # unchanged configuration: valid, and applying it changes nothing
        v = await ff.validate_config(got.yaml, "same.yaml")
        assert v.valid and list(v.switches) == ["sw1"] and v.normalized_yaml == got.yaml
        r = await ff.apply_config(got.yaml, "same.yaml")
        assert r.valid and [(s.switch, s.inserted, s.modified, s.deleted, s.failed) for s in r.switches] == [
            ("sw1", 0, 0, 0, 0)]
        # one more rule on vm2 (udp/53, ignore dst): its rows are inserted, nothing else changes
        doc["switches"][0]["vmis"][1]["rules"] = [{"protocol": "udp", "port": 53, "ignore_address": "dst"}]
        r = await ff.apply_config(yaml.safe_dump(doc), "more.yaml")
        assert r.valid and r.switches[0].inserted > 0 and r.switches[0].deleted == 0 and r.switches[0].failed == 0
        assert daemon.cfg.switch("sw1").vmis[1].vmi.rules[0].port == 53
        # an invalid one: every problem, with lines, and nothing changes
        doc["switches"][0]["vmis"][1]["vn"] = "bleu"
        doc["flowtable"]["max_flow"] = 3
        bad = yaml.safe_dump(doc)
        v = await ff.validate_config(bad, "bad.yaml")
        assert not v.valid and [p.path for p in v.problems] == ["flowtable.max_flow"]
        assert "did you mean 'max_flows'" in v.problems[0].message and v.problems[0].file == "bad.yaml"
        assert v.problems[0].line > 0
        del doc["flowtable"]["max_flow"]
        r = await ff.apply_config(yaml.safe_dump(doc), "bad.yaml")
        assert not r.valid and r.problems[0].path == "switches[0].vmis[1].vn"
        assert "unknown vn 'bleu' (did you mean 'blue'?)" in r.problems[0].message
        assert daemon.cfg.switch("sw1").vmis[1].vn.name == "blue" and not r.switches


async def test_configure_flowtable_max_flows_port_disable_and_egress_at_run_time(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, rules=[]) as (daemon, address), \
            AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        r = await ff.configure_flowtable(max_flows=2)
        assert r.valid and r.switches[0].failed == 0
        assert node.flows.settings.max_flows == 2 and (await ff.get_stats()).switches[0].max_flows == 2
        # learning now recycles at 2 flows
        frames = [frame("10.0.0.3", f"9.9.9.{i}", 6, 1000 + i, 80) for i in range(4)]
        for n, f in enumerate(frames, 1):  # one at a time: each new flow finds the others installed
            assert await send_paced(switch, VM1, [f], FABRIC) == 1
            await eventually(lambda n=n: node.flows.stats.setups == n, what=f"flow {n} installed")
        assert node.flows.stats.recycles == 2 and len(await switch_flows(node)) == 2
        # vm1's flowtable off: its port entry changes (one MODIFY), its new flows are not learned
        r = await ff.configure_flowtable(ports=[{"port": VM1, "enable": False}])
        assert r.switches[0].modified == 1 and not daemon.cfg.switch("sw1").vmis[0].flowtable
        before = node.flows.stats.digests
        assert await send_paced(switch, VM1, [frame("10.0.0.3", "7.7.7.7", 6, 1, 80)], FABRIC) == 1
        assert node.flows.stats.digests == before
        # egress override for flows learned on the fabric port; unset values stay (vm1 still off)
        r = await ff.configure_flowtable(ports=[{"port": FABRIC, "egress_port": VM2}])
        assert daemon.cfg.switch("sw1").fabric_ports[0].egress_port == VM2
        assert not daemon.cfg.switch("sw1").vmis[0].flowtable and daemon.cfg.switch("sw1").flowtable.max_flows == 2
        # bad requests: nothing changes
        with pytest.raises(NotFound, match="has no VMI or fabric port 7"):
            await ff.configure_flowtable(ports=[{"port": 7, "enable": True}])
        with pytest.raises(InvalidArgument, match="max_flows"):
            await ff.configure_flowtable(max_flows=10**6)
        with pytest.raises(InvalidArgument, match="egress_port"):
            await ff.configure_flowtable(ports=[{"port": VM1, "egress_port": 9}])
        assert daemon.cfg.switch("sw1").flowtable.max_flows == 2


async def test_list_ports_and_stats(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        ports = (await ff.list_ports()).ports
        assert [(p.port, p.kind, p.name) for p in ports] == [(1, "vmi", "vm1"), (2, "vmi", "vm2"), (3, "fabric", "")]
        vm1 = ports[0]
        assert [(r.protocol, r.port, r.ignore_address, r.src_subnet, r.src_plen, r.dst_subnet, r.dst_plen)
                for r in vm1.rules] == [(17, 53, "dst", "10.0.0.0/8", 28, "", 0),
                                        (6, 0, "none", "10.0.0.0/8", 28, "20.0.0.0/8", 28)]
        assert "10.0.0.1/32" in vm1.exclude and "169.254.0.0/16" in vm1.exclude and vm1.vrf == 10
        assert vm1.vmi_id == daemon.nodes["sw1"].vmi_ids["vm1"]
        await send_paced(switch, VM1, [frame("10.0.0.3", "8.8.8.8", 17, 1111, 53),
                                       frame("2001:db8::3", "2001:4860::8888", 17, 5, 53)], FABRIC)
        await eventually(lambda: daemon.nodes["sw1"].flows.stats.setups == 2, what="2 flows")
        s = (await ff.get_stats("sw1")).switches[0]
        assert (s.switch, s.state, s.flows, s.setups, s.max_flows, s.vmis) == ("sw1", "primary", 2, 2, 1000, 2)
        tables = {t.table: (t.entries, t.capacity) for t in s.tables}
        assert tables["ingress.flowtable.flow_v4"] == (1, 65536) and tables["ingress.flowtable.flow_v6"] == (1, 65536)
        assert tables["ingress.port_map.port_table"] == (3, 0)
        assert s.config_entries == sum(n for t, (n, cap) in tables.items() if not cap)
        with pytest.raises(NotFound, match="did you mean 'sw1'"):
            await ff.get_stats("sw-1")


async def test_health_and_reflection(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, token=True) as (_daemon, address):
        async with grpc.aio.insecure_channel(address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for service in ("", "fatflow.v1.Fatflow"):
                r = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert r.status == health_pb2.HealthCheckResponse.SERVING
        # reflection, as grpcurl uses it (sync channel: the descriptor database is blocking)
        with grpc.insecure_channel(address) as ch:
            db = ProtoReflectionDescriptorDatabase(ch)
            import asyncio

            services = await asyncio.to_thread(db.get_services)
            assert "fatflow.v1.Fatflow" in services and "grpc.health.v1.Health" in services
            fd = await asyncio.to_thread(db.FindFileContainingSymbol, "fatflow.v1.Fatflow")
            assert "UpdateFlow" in [m.name for m in fd.service[0].method]


async def test_bearer_token_required_and_nothing_changes_without_it(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, token=True) as (daemon, address):
        node = daemon.nodes["sw1"]
        await send_paced(switch, VM1, [frame("10.0.0.3", "8.8.8.8", 17, 1111, 53)], FABRIC)
        await eventually(lambda: node.flows.stats.setups == 1, what="learned")
        before = await switch_flows(node)
        for token in (None, "wrong", TOKEN + "x"):
            async with AsyncFatflowClient(address, token=token) as ff:
                with pytest.raises(Unauthenticated, match="bearer token"):
                    await ff.update_flow(packet=("10.0.0.3", "8.8.8.8", 17, 1111, 53), vmi="vm1", lifetime=5,
                                         preinstall=True)
                with pytest.raises(Unauthenticated):
                    await ff.configure_flowtable(max_flows=5)
                with pytest.raises(Unauthenticated):
                    await ff.get_stats()
                with pytest.raises(Unauthenticated):
                    async for _ in ff.watch_flows():
                        pass
        assert await switch_flows(node) == before and daemon.cfg.switch("sw1").flowtable.max_flows == 1000
        (tmp_path / "tok").write_text(TOKEN)
        async with AsyncFatflowClient(address, token_file=tmp_path / "tok") as ff:
            r = await ff.update_flow(packet=("10.0.0.3", "8.8.8.8", 17, 1111, 53), vmi="vm1", lifetime=5)
            assert r.status == pb.UpdateFlowResult.APPLIED


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test certificate")
async def test_tls(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    from apitest import api_config
    from ffd import running_fatflowd

    path, address = api_config(tmp_path, switch, ff_build)
    doc = yaml.safe_load(path.read_text())
    doc["api"]["tls"] = {"cert": "cert.pem", "key": "key.pem"}
    path.write_text(yaml.safe_dump(doc))
    async with running_fatflowd(path) as daemon:
        assert daemon.api.server is not None
        async with AsyncFatflowClient(address, ca=tmp_path / "cert.pem") as ff:
            assert (await ff.get_stats()).switches[0].switch == "sw1"
        async with AsyncFatflowClient(address, timeout=2) as plain:  # plaintext to a TLS server fails
            with pytest.raises(FatflowError):
                await plain.get_stats()
