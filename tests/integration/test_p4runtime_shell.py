"""p4runtime-shell, in its own venv (it pins protobuf < 3.21), used against softswitch as a
user would: connect, push the pipeline, insert, read back and delete entries."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from softswitch.launch import PipelineBuild, Target

REPO = Path(__file__).resolve().parents[2]
SHELL_VENV = REPO / ".venv-shell"

SCRIPT = textwrap.dedent("""
    import sys
    import p4runtime_sh.shell as sh
    addr, p4info, config = sys.argv[1:4]
    sh.setup(device_id=1, grpc_addr=addr, election_id=(0, 1), config=sh.FwdPipeConfig(p4info, config))
    te = sh.TableEntry("ingress.port_map.port_table")(action="ingress.port_map.set_vmi_port")
    te.match["ingress_port"] = "1"
    for name, value in (("vmi_id", "7"), ("vrf", "1"), ("miss_policy", "0"), ("mirror_new_flows", "0"),
                        ("flowtable_enabled", "1")):
        te.action[name] = value
    te.insert()
    route = sh.TableEntry("ingress.routing.route_v4")(action="ingress.routing.set_next_hop")
    route.match["vrf"] = "1"
    route.match["dst_addr"] = "10.0.0.0/8"
    for name, value in (("port", "3"), ("src_mac", "02:00:00:00:00:aa"), ("dst_mac", "02:00:00:00:00:bb"),
                        ("dst_vmi_id", "0")):
        route.action[name] = value
    route.insert()
    read = list(sh.TableEntry("ingress.routing.route_v4").read())
    print("READ", len(read))
    print("PORT PARAM", read[0].action["port"].value == b"\\x03")
    route.delete()
    print("AFTER DELETE", len(list(sh.TableEntry("ingress.routing.route_v4").read())))
    sh.teardown()
""")


@pytest.fixture(scope="module")
def shell_python() -> Path:
    python = SHELL_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SHELL_VENV)], check=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "p4runtime-shell"], check=True, timeout=600)
    return python


def test_p4runtime_shell_pushes_inserts_reads_deletes(shell_python: Path, target: Target,
                                                      build: PipelineBuild) -> None:
    proc = subprocess.run([str(shell_python), "-c", SCRIPT, target.address, str(build.p4info),
                           str(build.device_config)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "READ 1" in lines and "PORT PARAM True" in lines, proc.stdout
    assert "AFTER DELETE 0" in lines, proc.stdout
