"""The ``softswitch`` command line, run as a subprocess (``python -m softswitch``)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import grpc
from finsy.proto import p4r, p4r_grpc

PROGRAMS = Path(__file__).parent / "programs"


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "softswitch", *args], capture_output=True, text=True,
                          timeout=timeout)


def _start(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "softswitch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server is up (or the process died)
    if not line.startswith("softswitch: listening on "):
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"no listening line: {line!r}; stderr: {err}")
    return proc, int(line.rsplit(":", 1)[1])


def test_serves_without_program_and_stops_on_sigterm() -> None:
    proc, port = _start("--no-p4", "--grpc-server-addr", "127.0.0.1:0", "--device-id", "3")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = p4r_grpc.P4RuntimeStub(ch)
            caps = stub.Capabilities(p4r.CapabilitiesRequest(), timeout=10)
            assert caps.p4runtime_api_version
            try:
                stub.GetForwardingPipelineConfig(p4r.GetForwardingPipelineConfigRequest(device_id=3), timeout=10)
                raise AssertionError("expected FAILED_PRECONDITION without a pipeline")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_sigint_is_a_clean_stop() -> None:
    proc, _ = _start("--no-p4", "--grpc-server-addr", "127.0.0.1:0")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err


def test_bad_arguments_exit_1_without_traceback() -> None:
    for args in (["--grpc-server-addr", "nohostport"], ["-i", "x@eth0", "--no-p4"], ["--device-id", "abc"],
                 ["--no-p4", str(PROGRAMS / "l3_forward.p4")], [str(PROGRAMS / "does_not_exist.p4")]):
        r = _run(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert "softswitch" in r.stderr and "error" in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr, (args, r.stderr)


def test_bad_program_exit_1_with_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.p4"
    bad.write_text("#include <v1model.p4>\ncontrol C() { apply { x = ; } }\n")
    r = _run(str(bad), "--grpc-server-addr", "127.0.0.1:0")
    assert r.returncode == 1
    assert "does not compile" in r.stderr and "bad.p4:" in r.stderr
    assert "Traceback" not in r.stderr


def test_address_in_use_is_an_error() -> None:
    proc, port = _start("--no-p4", "--grpc-server-addr", "127.0.0.1:0")
    try:
        r = _run("--no-p4", "--grpc-server-addr", f"127.0.0.1:{port}")
        assert r.returncode == 1 and "cannot listen" in r.stderr and "Traceback" not in r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_program_loaded_at_start_is_served() -> None:
    proc, port = _start(str(PROGRAMS / "l3_forward.p4"), "--grpc-server-addr", "127.0.0.1:0", "--cpu-port", "64")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = p4r_grpc.P4RuntimeStub(ch)
            G = p4r.GetForwardingPipelineConfigRequest
            resp = stub.GetForwardingPipelineConfig(G(device_id=0, response_type=G.ALL), timeout=10)
            assert "MyIngress.ipv4_lpm" in [t.preamble.name for t in resp.config.p4info.tables]
            assert resp.config.p4_device_config == (PROGRAMS / "l3_forward.p4").read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_compile_writes_p4info_in_each_format(tmp_path: Path) -> None:
    from finsy.proto import p4i
    from google.protobuf import json_format, text_format

    txt, js, binf = tmp_path / "x.p4info.txtpb", tmp_path / "x.json", tmp_path / "x.bin"
    r = _run("compile", str(PROGRAMS / "l3_forward.p4"), "--p4runtime-files", f"{txt},{js},{binf}")
    assert r.returncode == 0, r.stderr
    a = text_format.Parse(txt.read_text(), p4i.P4Info())
    b = json_format.Parse(js.read_text(), p4i.P4Info())
    c = p4i.P4Info.FromString(binf.read_bytes())
    assert a == b == c
    # 37375156: the id p4c gives MyIngress.ipv4_lpm (p4lang/tutorials basic.p4 build output)
    assert {t.preamble.name: t.preamble.id for t in a.tables} == {"MyIngress.ipv4_lpm": 37375156}
    r = _run("compile", str(PROGRAMS / "l3_forward.p4"), "--p4runtime-files", str(tmp_path / "x.yaml"))
    assert r.returncode == 1 and "unknown P4Runtime file suffix" in r.stderr
