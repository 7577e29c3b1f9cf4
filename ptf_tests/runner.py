"""Run the PTF suite over veth pairs in a private network namespace (root only).

    python ptf_tests/runner.py [--target softswitch|bmv2] [--keep] [--p4 PROGRAM] [PTF test names...]

Creates a network namespace with one veth pair per switch port (``vethN`` for the switch,
``vethNp`` for PTF), starts the target on the switch ends, runs ``ptf`` on the other ends,
and removes everything afterwards. ``--target`` defaults to ``$FATFLOW_PTF_TARGET`` or
softswitch; ``bmv2`` runs ``simple_switch_grpc`` with the JSON that ``make p4`` builds with
p4c, so the same tests run against both. Test names are PTF's: a module (``parsing``) or
``module.Class``. Ctrl-C, SIGTERM and SIGHUP stop the target and ptf and remove the namespace;
namespaces of runs killed outright are removed by the next run. docs/labs.md has the raw
ptf command line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PORTS = (1, 2, 3, 4)
GRPC_ADDR = "127.0.0.1:9559"
DEVICE_ID = 1
CPU_PORT = 255


def run(*args: str) -> None:
    subprocess.run(args, check=True)


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    ns = f"fatflow-ptf-{os.getpid()}"
    run("ip", "netns", "add", ns)
    try:
        nsx = ("ip", "netns", "exec", ns)
        # no kernel IPv6 chatter (router solicitations, DAD) on the test links
        run(*nsx, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
        run(*nsx, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        for p in PORTS:
            run("ip", "-n", ns, "link", "add", f"veth{p}", "type", "veth", "peer", "name", f"veth{p}p")
            for end in (f"veth{p}", f"veth{p}p"):
                run("ip", "-n", ns, "link", "set", end, "mtu", "9000", "up")
        yield ns
    finally:
        # Our own namespace: whatever still runs in it was started by this run (target, ptf).
        for pid in netns_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def netns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def remove_stale_namespaces() -> None:
    """Namespaces of earlier runs that were killed (SIGKILL) before they could clean up: deleted
    when nothing runs in them any more (deleting one removes its veth pairs); reported otherwise."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(r"fatflow-ptf-(\d+)", name)
        if not m or Path(f"/proc/{m.group(1)}").exists():
            continue  # not ours, or its runner is alive
        if netns_pids(name):
            print(f"runner: stale namespace {name} still has processes {netns_pids(name)}; left alone",
                  file=sys.stderr)
        else:
            subprocess.run(["ip", "netns", "del", name], check=False)
            print(f"runner: removed stale namespace {name}", file=sys.stderr)


def stop(proc: subprocess.Popen[Any] | None) -> None:
    """Terminate a child started in its own session (and its process group), then kill it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def build_pipeline(out: Path, target: str, program: Path) -> tuple[Path, Path]:
    """(P4Info, device config) for the target."""
    from softswitch.launch import compile_pipeline

    build = compile_pipeline(out, program)
    if target == "softswitch":
        return build.p4info, build.device_config
    json_path, p4info = REPO / "build" / "fatflow.json", REPO / "build" / "fatflow.p4info.txtpb"
    if not json_path.exists() or not p4info.exists():
        raise SystemExit("runner: --target bmv2 needs build/fatflow.json from p4c: run 'make p4' where p4c is installed")
    return p4info, json_path


def start_target(ns: str, target: str, log: Path) -> subprocess.Popen[bytes]:
    ifaces = [a for p in PORTS for a in ("-i", f"{p}@veth{p}")]
    if target == "softswitch":
        cmd = [sys.executable, "-m", "softswitch", "--device-id", str(DEVICE_ID), "--cpu-port", str(CPU_PORT),
               "--grpc-server-addr", GRPC_ADDR, *ifaces, "--no-p4"]
    else:
        exe = shutil.which("simple_switch_grpc")
        if exe is None:
            raise SystemExit("runner: --target bmv2 needs simple_switch_grpc on PATH")
        cmd = [exe, "--device-id", str(DEVICE_ID), *ifaces, "--no-p4", "--",
               "--grpc-server-addr", GRPC_ADDR, "--cpu-port", str(CPU_PORT)]
    out = log.open("wb")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)  # Ctrl-C reaches the runner, which stops it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"runner: the target exited with {proc.returncode}:\n{log.read_text()}")
        probe = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                                "import socket; socket.create_connection(('127.0.0.1', 9559), 0.2)"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return proc
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"runner: the target did not listen on {GRPC_ADDR} within 60 s:\n{log.read_text()}")


def ptf_script() -> str:
    """The ptf script of this interpreter's environment (the venv need not be on PATH)."""
    beside = Path(sys.executable).parent / "ptf"
    if beside.exists():
        return str(beside)
    found = shutil.which("ptf")
    if found is None:
        raise SystemExit("runner: ptf is not installed (pip install ptf, or make venv)")
    return found


def _lines(proc: subprocess.Popen[str]) -> Iterator[str]:
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        yield line


def run_ptf(cmd: list[str]) -> tuple[int, int, int]:
    """Run ptf, echoing its output; returns (exit code, tests passed, tests failed)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    ran = failed = 0
    assert proc.stdout is not None
    try:
        lines = list(_lines(proc))
    finally:
        stop(proc)  # on Ctrl-C / SIGTERM
    for line in lines:
        m = re.match(r"Ran (\d+) tests? in", line)
        if m:
            ran = int(m.group(1))
        m = re.match(r"FAILED \((.*)\)", line.strip())
        if m:  # unittest's summary: FAILED (failures=1, errors=2)
            failed = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", m.group(1)))
    rc = proc.wait()
    if rc != 0 and failed == 0:
        failed = 1  # ptf itself failed (import error, setup): count it
    return rc, max(ran - failed, 0), failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=("softswitch", "bmv2"),
                    default=os.environ.get("FATFLOW_PTF_TARGET", "softswitch"))
    ap.add_argument("--keep", action="store_true", help="keep the logs directory")
    ap.add_argument("--p4", default=str(REPO / "p4src" / "fatflow_v1model.p4"),
                    help="the P4 program for softswitch (default: p4src/fatflow_v1model.p4; e.g. a mutant)")
    ap.add_argument("tests", nargs="*", help="PTF test names (default: all)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("runner: PTF needs root (veth pairs, AF_PACKET); SKIPPED", file=sys.stderr)
        return 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)  # clean up as on Ctrl-C
    remove_stale_namespaces()
    work = Path(tempfile.mkdtemp(prefix="fatflow-ptf-"))
    p4info, config = build_pipeline(work / "build", args.target, Path(args.p4).resolve())
    print(f"PTF suite against {args.target}: logs in {work}")
    started = time.monotonic()
    with namespace() as ns:
        proc = None
        try:
            proc = start_target(ns, args.target, work / "target.log")
            params = (f"grpcaddr='{GRPC_ADDR}';device_id={DEVICE_ID};cpu_port={CPU_PORT};"
                      f"p4info='{p4info}';config='{config}'")
            cmd = ["ip", "netns", "exec", ns, sys.executable, ptf_script(),
                   "--test-dir", str(REPO / "ptf_tests"), "--pypath", str(REPO),
                   "--log-dir", str(work / "ptf"), "--test-params", params, "--test-case-timeout", "120",
                   *[a for p in PORTS for a in ("--interface", f"{p}@veth{p}p")], *args.tests]
            rc, passed, failed = run_ptf(cmd)
        finally:
            stop(proc)
    print(f"ptf: {passed} passed, {failed} failed in {time.monotonic() - started:.1f} s")
    if rc != 0:
        print(f"PTF FAILED (exit {rc}); target log:\n{(work / 'target.log').read_text()[-4000:]}")
    if rc == 0 and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"runner: interrupted ({exc or 'Ctrl-C'}); target, ptf and namespace removed", file=sys.stderr)
        sys.exit(130)
