"""The network-namespace lab: ``up`` builds it around one switch of a fatflowd configuration and
leaves it running in the background, ``down`` removes it (also after a crash).

Layout: the switch process (softswitch, or simple_switch_grpc with ``target="bmv2"``) runs in the
**root namespace**, so fatflowd, also in the root namespace, reaches its P4Runtime port on the
configuration's ``address`` (127.0.0.1:9559); its ports are the root-namespace ends of the veth
pairs, ``<prefix>-p<port>``. Every host has its own namespace ``<prefix>-<host>`` with the other end
as ``eth0`` (topo/plan.py says what each host gets). State goes to the run directory
(``build/lab`` by default): ``state.json`` (pids, hosts, addresses), ``switch.log``,
``fatflowd.log`` and, when the lab had to change the configuration (another P4Runtime address,
the BMv2 pipeline files), the configuration fatflowd actually runs with, ``fatflowd.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p4fatflow.settings import FatflowConfig, SwitchConfig, config_to_yaml, load_config

from softswitch.launch import free_port
from topo import netns
from topo.plan import LabPlan, build_plan

__all__ = ["REPO", "LabError", "LabState", "up", "down", "status", "read_state", "usage", "tool_problems",
           "BMV2_JSON", "BMV2_P4INFO", "start_fatflowd", "wait_fatflowd_ready",
           "effective_config", "spawn"]

REPO = Path(__file__).resolve().parents[1]
BMV2_JSON = REPO / "build" / "fatflow.json"
BMV2_P4INFO = REPO / "build" / "fatflow.p4info.txtpb"
STATE = "state.json"


class LabError(RuntimeError):
    pass


@dataclass
class LabState:
    """What ``up`` created; stored as JSON in the run directory."""

    prefix: str
    run_dir: str
    config: str  # the file fatflowd runs with
    source_config: str  # the file the lab was built from
    switch: str
    target: str
    address: str
    device_id: int
    cpu_port: int
    p4info: str
    hosts: list[dict[str, Any]] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    api: str = ""  # fatflowd's API address (fatflowctl --address)

    def save(self) -> None:
        path = Path(self.run_dir) / STATE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        tmp.replace(path)

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def host(self, name: str) -> dict[str, Any]:
        for h in self.hosts:
            if h["name"] == name:
                return h
        raise KeyError(name)


def read_state(run_dir: Path) -> LabState | None:
    try:
        return LabState(**json.loads((run_dir / STATE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def tool_problems(target: str = "softswitch") -> list[str]:
    """Missing commands the lab needs (root, ip, ethtool, the BMv2 binary)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root (network namespaces, veth pairs, AF_PACKET)")
    for tool, pkg in (("ip", "iproute2"), ("ethtool", "ethtool"), ("sysctl", "procps")):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed (apt-get install -y {pkg})")
    if target == "bmv2" and shutil.which("simple_switch_grpc") is None:
        problems.append("TARGET=bmv2 needs simple_switch_grpc on PATH")
    return problems


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def _port_in_use(addr: str) -> bool:
    host, port = _split(addr)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _listening(addr: str) -> bool:
    host, port = _split(addr)
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _switch_command(target: str, plan: LabPlan, address: str) -> list[str]:
    sw = plan.switch
    ifs = [a for p in plan.ports for a in ("-i", f"{p}@{plan.switch_ifname(p)}")]
    if target == "bmv2":
        exe = shutil.which("simple_switch_grpc") or "simple_switch_grpc"
        return [exe, "--device-id", str(sw.device_id), *ifs, "--thrift-port", str(free_port()), "--log-console",
                "--no-p4", "--",
                "--grpc-server-addr", address, "--cpu-port", str(sw.cpu_port)]
    return [sys.executable, "-m", "softswitch", "--device-id", str(sw.device_id), "--cpu-port", str(sw.cpu_port),
            "--grpc-server-addr", address, "--log-level", "info", *ifs, "--no-p4"]


def spawn(cmd: list[str], log: Path, marker: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **{netns.LAB_ENV: marker})
    with log.open("ab") as out:
        # its own session: the lab outlives the command that started it, and Ctrl-C of a shell
        # that ran `make lab` later does not reach it
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, cwd=REPO)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout``; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_fatflowd(config: Path, log: Path, marker: str) -> subprocess.Popen[bytes]:
    """The real ``fatflowd`` command (``python -m p4fatflow.daemon``) in the background."""
    return spawn([sys.executable, "-m", "p4fatflow.daemon", str(config), "--log-level", "info"], log, marker)


def wait_fatflowd_ready(ffd: subprocess.Popen[bytes], log: Path, switch: str, deadline: float,
                        others: Sequence[tuple[str, subprocess.Popen[bytes], Path]] = ()) -> int:
    """Wait until fatflowd's log says it is primary on ``switch`` and applied the configuration
    (the report line); returns the number of configuration entries. Raises LabError if fatflowd
    (or one of ``others``) exits, a write failed, or ``deadline`` (monotonic) passes."""
    ready = re.compile(rf"switch {re.escape(switch)}: (\d+) inserted, .*, (\d+) failed; (\d+) configuration entries")
    while True:
        m = ready.search(_tail(log, 1 << 20))
        if m:
            break
        for name, p, plog in (("fatflowd", ffd, log), *others):
            if p.poll() is not None:
                raise LabError(f"{name} exited with {p.returncode}:\n{_tail(plog)}")
        if time.monotonic() > deadline:
            raise LabError(f"fatflowd did not become primary on {switch} in time:\n{_tail(log)}")
        time.sleep(0.1)
    if int(m.group(2)):
        raise LabError(f"fatflowd could not write {m.group(2)} configuration entries:\n{_tail(log)}")
    return int(m.group(3))


def effective_config(cfg: FatflowConfig, sw: SwitchConfig, *, address: str | None, p4info: Path | None,
                      device_config: Path | None, api_listen: str | None = None) -> tuple[FatflowConfig, bool]:
    """``cfg`` with the lab's overrides (switch address, pipeline files, fatflowd's API address);
    the flag says whether anything changed (else fatflowd runs with the file itself)."""
    if api_listen is not None and api_listen != cfg.api.listen:
        cfg = dataclasses.replace(cfg, api=dataclasses.replace(cfg.api, listen=api_listen, metrics_listen=None))
        new_cfg, _ = effective_config(cfg, sw, address=address, p4info=p4info, device_config=device_config)
        return new_cfg, True
    changes: dict[str, Any] = {}
    if address is not None and address != sw.address:
        changes["address"] = address
    if p4info is not None and p4info.resolve() != sw.p4info.resolve():
        changes["p4info"] = p4info.resolve()
    if device_config is not None and device_config.resolve() != sw.device_config.resolve():
        changes["device_config"] = device_config.resolve()
    if not changes:
        return cfg, False
    new_sw = dataclasses.replace(sw, **changes)
    switches = tuple(new_sw if s.name == sw.name else s for s in cfg.switches)
    return dataclasses.replace(cfg, switches=switches), True


def up(config: Path, *, switch: str | None = None, target: str = "softswitch", run_dir: Path = REPO / "build" / "lab",
       prefix: str = "ffl", address: str | None = None, p4info: Path | None = None,
       device_config: Path | None = None, api_listen: str | None = None, timeout: float = 90.0,
       say: Callable[[str], None] = lambda s: print(s, flush=True)) -> LabState:
    """Build the lab and start the switch and fatflowd; returns once fatflowd is primary and has
    applied the configuration. On any failure (or Ctrl-C) everything is removed again."""
    if target not in ("softswitch", "bmv2"):
        raise LabError(f"target {target!r}: expected softswitch or bmv2")
    problems = tool_problems(target)
    if problems:
        raise LabError("; ".join(problems))
    cfg = load_config(config)
    plan = build_plan(cfg, switch, prefix=prefix)
    sw = plan.switch
    if target == "bmv2":
        p4info = p4info or BMV2_P4INFO
        device_config = device_config or BMV2_JSON
    eff, changed = effective_config(cfg, sw, address=address, p4info=p4info, device_config=device_config,
                                    api_listen=api_listen)
    eff_sw = eff.switch(sw.name)
    # A running lab is the first thing to say (whatever else is wrong with this request).
    found = netns.leftovers(prefix)
    if found.pids:
        raise LabError(f"a lab with prefix {prefix!r} is running ({found}): 'make lab-down' first")
    for what, path in (("p4info", eff_sw.p4info), ("device_config", eff_sw.device_config)):
        if not path.is_file():
            raise LabError(f"{what} {path} does not exist: run 'make p4' first"
                           + (" (with p4c installed, for BMv2)" if target == "bmv2" else ""))

    run_dir = run_dir.resolve()
    old = read_state(run_dir)
    if found:
        netns.remove_leftovers(prefix)
        say(f"lab: removed leftovers of an earlier lab: {found}")
    if old is not None and old.prefix != prefix and netns.leftovers(old.prefix).pids:
        raise LabError(f"{run_dir} belongs to a running lab with prefix {old.prefix!r}: take it down first")
    if _port_in_use(eff_sw.address):
        raise LabError(f"P4Runtime address {eff_sw.address} is in use: stop what listens there, or pass "
                       f"another address (--grpc-addr)")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("switch.log", "fatflowd.log", "fatflowd.yaml", STATE):
        (run_dir / name).unlink(missing_ok=True)
    fatflowd_config = Path(config).resolve()
    if changed:
        fatflowd_config = run_dir / "fatflowd.yaml"
        fatflowd_config.write_text(f"# written by topo (lab of {config}, switch {sw.name}); do not edit\n"
                                   + config_to_yaml(eff))
    state = LabState(prefix, str(run_dir), str(fatflowd_config), str(Path(config).resolve()), sw.name, target,
                     eff_sw.address, sw.device_id, sw.cpu_port, str(eff_sw.p4info),
                     hosts=[{"name": h.name, "namespace": plan.namespace(h), "role": h.role, "port": h.port,
                             "mac": h.mac, "addresses": [str(a) for a in h.addresses], "vn": h.vn}
                            for h in plan.hosts], api=eff.api.listen)
    marker = f"{prefix}:{run_dir}"
    try:
        state.save()
        for h in plan.hosts:
            netns.create_host(plan, h)
        say(f"lab: {len(plan.hosts)} hosts around switch {sw.name} ({', '.join(plan.namespace(h) for h in plan.hosts)})")
        sw_log = run_dir / "switch.log"
        proc = spawn(_switch_command(target, plan, eff_sw.address), sw_log, marker)
        state.pids["switch"] = proc.pid
        state.save()
        deadline = time.monotonic() + timeout
        while not _listening(eff_sw.address):
            if proc.poll() is not None:
                raise LabError(f"{target} exited with {proc.returncode}:\n{_tail(sw_log)}")
            if time.monotonic() > deadline:
                raise LabError(f"{target} did not listen on {eff_sw.address} within {timeout:.0f} s:\n{_tail(sw_log)}")
            time.sleep(0.1)
        say(f"lab: {target} (pid {proc.pid}) serves P4Runtime on {eff_sw.address}, device {sw.device_id}")
        ffd_log = run_dir / "fatflowd.log"
        ffd = start_fatflowd(fatflowd_config, ffd_log, marker)
        state.pids["fatflowd"] = ffd.pid
        state.save()
        entries = wait_fatflowd_ready(ffd, ffd_log, sw.name, deadline, others=[(target, proc, sw_log)])
        say(f"lab: fatflowd (pid {ffd.pid}) is primary on {sw.name}: {entries} configuration entries")
        return state
    except BaseException:
        netns.remove_leftovers(prefix)
        (run_dir / STATE).unlink(missing_ok=True)
        raise


def down(run_dir: Path = REPO / "build" / "lab", prefix: str | None = None) -> netns.Leftovers:
    """Remove the lab: its processes, namespaces and links (found by name prefix and process
    marker, so this works after a crash too). Idempotent. Logs stay in the run directory."""
    state = read_state(run_dir.resolve())
    prefixes = list(dict.fromkeys(p for p in (prefix, state.prefix if state else None) if p)) or ["ffl"]
    found = netns.Leftovers()
    for p in prefixes:
        got = netns.remove_leftovers(p)
        found.pids += got.pids
        found.namespaces += got.namespaces
        found.links += got.links
    (run_dir / STATE).unlink(missing_ok=True)
    return found


def status(run_dir: Path = REPO / "build" / "lab") -> str:
    state = read_state(run_dir.resolve())
    if state is None:
        return f"no lab state in {run_dir}"
    lines = [f"lab {state.prefix!r} around switch {state.switch} ({state.target}, P4Runtime {state.address}, "
             f"device {state.device_id}); fatflowd runs {state.config}"]
    for name, pid in state.pids.items():
        alive = Path(f"/proc/{pid}").exists()
        lines.append(f"  {name:9} pid {pid:<7} {'running' if alive else 'NOT RUNNING'}")
    for h in state.hosts:
        lines.append(f"  {h['namespace']:16} {h['role']:8} port {h['port']:<3} {h['mac']}  {' '.join(h['addresses'])}")
    return "\n".join(lines)


def usage(state: LabState, python: str = ".venv/bin/python") -> str:
    """How to use a running lab, with commands for its actual hosts and addresses."""
    vms = [h for h in state.hosts if h["role"] == "vm"]
    fabs = [h for h in state.hosts if h["role"] == "fabric"]
    ana = [h for h in state.hosts if h["role"] == "analyzer"]
    run = Path(state.run_dir)
    try:
        run_rel: Path | str = run.relative_to(Path.cwd())
    except ValueError:
        run_rel = run
    out = [f"The lab is up (state and logs in {run_rel}/). Hosts are network namespaces:"]
    for h in state.hosts:
        out.append(f"  {h['namespace']:16} {h['role']:8} switch port {h['port']:<3} {h['mac']}  "
                   f"{' '.join(h['addresses']) or '-'}")
    out.append("Run commands in a host with: ip netns exec <namespace> <command>, for example:")

    def ex(ns: str, cmd: str) -> str:
        return f"  ip netns exec {ns} {cmd}"

    def pick(h: dict[str, Any], version: int) -> str | None:
        return next((a for a in h["addresses"] if (":" in a) == (version == 6)), None)

    if vms and fabs:
        vm, fab = vms[0], fabs[0]
        v4, f4 = pick(vm, 4), pick(fab, 4)
        if f4:
            out.append(ex(vm["namespace"], f"ping -c 3 {f4}"))
        f6 = pick(fab, 6)
        if pick(vm, 6) and f6:
            out.append(ex(vm["namespace"], f"ping -c 3 {f6}"))
        if f4:
            out.append(ex(fab["namespace"], "iperf3 -s -D -1    # one test, in the background"))
            out.append(ex(vm["namespace"], f"iperf3 -c {f4} -t 3"))
            out.append(ex(fab["namespace"], f"{python} -m http.server 80 --bind {f4} &"))
            out.append(ex(vm["namespace"], f"curl -s -o /dev/null -w '%{{http_code}}\\n' http://{f4}/"))
            out.append(ex(fab["namespace"], f"{python} -m topo.dnsd {f4} &   # answers every A query"))
            out.append(ex(vm["namespace"], f"dig +short @{f4} example.org"))
        if len(vms) > 1 and v4 and pick(vms[1], 4):
            out.append(ex(vms[1]["namespace"], f"ping -c 2 {v4}"))
    if ana:
        out.append(ex(ana[0]["namespace"], "tcpdump -eni eth0   # mirrored copies (apt-get install tcpdump)"))
    if state.api:
        ctl = f"{Path(python).parent / 'fatflowctl'} --address {state.api}"
        out += [f"The controller (fatflowd's API on {state.api}; or export FATFLOW_API={state.api}):",
                f"  {ctl} flows list      # flows with prefix lengths, counters, lifetime left",
                f"  {ctl} flows top       # live: the busiest flows, setups and expiries per second",
                f"  {ctl} flows watch     # created / updated / expired events as they happen",
                f"  {ctl} stats; {ctl} ports"]
    out += [f"Flows on the switch (read over P4Runtime): {python} -m topo flows --run-dir {run_rel}",
            f"Logs: {run_rel}/switch.log, {run_rel}/fatflowd.log; reload the configuration: kill -HUP "
            f"{state.pids.get('fatflowd', '<pid>')}",
            "Take it down: make lab-down"]
    return "\n".join(out)
