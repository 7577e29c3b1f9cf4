"""Mininet: P4Runtime switch classes (softswitch, simple_switch_grpc) and the lab topology of a
fatflowd configuration, used as the P4 tutorials use theirs.

    python -m topo.mininet_topo examples/lab.yaml [--target softswitch|bmv2] [--no-cli]

builds the hosts of :mod:`topo.plan` as Mininet hosts around one :class:`SoftSwitch` (or
:class:`Bmv2Switch`), starts fatflowd with the configuration (pointing at the switch's gRPC
port) and opens Mininet's CLI (``vm1 ping -c 3 203.0.113.1``, ``fab3 iperf3 -s &`` ...).

No OpenFlow controller or Open vSwitch is involved: ``Mininet(controller=None, switch=...)`` with
our switch class, which runs the target as a process in the root namespace on the switch's
Mininet interfaces (``-i PORT@<switch>-eth<PORT>``). Mininet is imported from Debian's package
(``apt-get install mininet``) when it is not in this interpreter's environment.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["import_mininet", "mininet_skip_reason", "P4RuntimeSwitch", "SoftSwitch", "Bmv2Switch",
           "FatflowHost", "FatflowTopo", "MininetLab", "mininet_lab", "main"]

_DEBIAN_DIST = "/usr/lib/python3/dist-packages"


def import_mininet() -> None:
    """Make ``import mininet`` work: this environment's, or Debian's package (its directory is on
    sys.path only while the package is imported; it needs nothing but the standard library, and
    its submodules are found through the package afterwards, so nothing else of the system's
    dist-packages becomes importable). Raises ImportError saying what to install."""
    try:
        import mininet  # type: ignore
        return
    except ImportError:
        pass
    if not os.path.isdir(os.path.join(_DEBIAN_DIST, "mininet")):
        raise ImportError("Mininet is not installed: apt-get install -y mininet")
    sys.path.append(_DEBIAN_DIST)
    try:
        import mininet  # noqa: F401
    finally:
        sys.path.remove(_DEBIAN_DIST)


def mininet_skip_reason() -> str | None:
    """Why a Mininet network cannot run here, or None."""
    if os.geteuid() != 0:
        return "Mininet needs root"
    if shutil.which("mnexec") is None:
        return "mnexec not found (apt-get install -y mininet)"
    try:
        import_mininet()
    except ImportError as exc:
        return str(exc)
    return None


import_mininet()

from mininet.log import setLogLevel  # type: ignore  # noqa: E402
from mininet.net import Mininet  # type: ignore  # noqa: E402
from mininet.node import Host, Switch  # type: ignore  # noqa: E402
from mininet.topo import Topo  # type: ignore  # noqa: E402
from p4fatflow.settings import config_to_yaml, load_config  # noqa: E402

from softswitch.launch import free_port  # noqa: E402
from topo import lab  # noqa: E402
from topo.plan import LabHost, LabPlan, build_plan  # noqa: E402


def _quiet_port(ifname: str) -> None:
    """A switch port in the root namespace: no IPv6 (the kernel would send RS/DAD/MLD into the
    switch), no offloads (frames carry full checksums, at most MTU size)."""
    subprocess.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{ifname}.disable_ipv6=1"], check=False,
                   capture_output=True)
    subprocess.run(["ethtool", "-K", ifname, "rx", "off", "tx", "off", "sg", "off"], check=False,
                   capture_output=True)


class P4RuntimeSwitch(Switch):  # type: ignore[misc]
    """A v1model switch serving P4Runtime on 127.0.0.1:``grpc_port``, started with its Mininet
    ports as ``-i PORT@IFACE`` and no program (the controller pushes it). ``log_dir`` receives
    ``<name>.log``. Runs in the root namespace; :meth:`stop` ends the process and its ports."""

    def __init__(self, name: str, *, grpc_port: int | None = None, device_id: int = 1, cpu_port: int = 255,
                 log_dir: str | None = None, env: dict[str, str] | None = None, **params: Any) -> None:
        params.setdefault("dpid", f"{device_id:016x}")  # Mininet wants one; names need no digits
        super().__init__(name, **params)
        self.grpc_port = grpc_port or free_port()
        self.device_id = device_id
        self.cpu_port = cpu_port
        self.log_file = Path(log_dir or "/tmp") / f"{name}.log"
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def port_names(self) -> list[tuple[int, str]]:
        return [(p, i.name) for p, i in sorted(self.intfs.items()) if i.name != "lo"]

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, controllers: Sequence[Any]) -> None:
        for _, ifname in self.port_names():
            _quiet_port(ifname)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1", **self.env))
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: exited with {self.proc.returncode}:\n{self._log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.grpc_port), 0.2):
                return
            if time.monotonic() > deadline:
                self.stop(deleteIntfs=False)
                raise RuntimeError(f"{self.name}: not listening on {self.grpc_address} after 60 s:\n"
                                   f"{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self, deleteIntfs: bool = True) -> None:
        self.stop_process()
        super().stop(deleteIntfs)

    def stop_process(self) -> None:
        """End the switch process (before Mininet takes its interfaces away)."""
        if self.proc is not None:
            lab.stop_process(self.proc)

    def connected(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class SoftSwitch(P4RuntimeSwitch):
    """softswitch (this repository's v1model target)."""

    def command(self) -> list[str]:
        ifs = [a for p, name in self.port_names() for a in ("-i", f"{p}@{name}")]
        return [sys.executable, "-m", "softswitch", "--device-id", str(self.device_id), "--cpu-port",
                str(self.cpu_port), "--grpc-server-addr", self.grpc_address, "--log-level", "info", *ifs, "--no-p4"]


class Bmv2Switch(P4RuntimeSwitch):
    """BMv2 ``simple_switch_grpc`` (own thrift port, console log into the log file)."""

    def __init__(self, name: str, *, thrift_port: int | None = None, sw_path: str = "simple_switch_grpc",
                 **params: Any) -> None:
        super().__init__(name, **params)
        self.thrift_port = thrift_port or free_port()
        self.sw_path = sw_path

    def command(self) -> list[str]:
        ifs = [a for p, name in self.port_names() for a in ("-i", f"{p}@{name}")]
        return [shutil.which(self.sw_path) or self.sw_path, "--device-id", str(self.device_id), *ifs,
                "--thrift-port", str(self.thrift_port), "--log-console", "--no-p4", "--",
                "--grpc-server-addr", self.grpc_address, "--cpu-port", str(self.cpu_port)]


class FatflowHost(Host):  # type: ignore[misc]
    """A host configured as :class:`topo.plan.LabHost` says (MAC, /32 and /128 addresses, routes
    via the gateway, static neighbours for the router MAC); Mininet's own IP/MAC are not used."""

    def __init__(self, name: str, lab_host: LabHost | None = None, **params: Any) -> None:
        self.lab_host = lab_host
        super().__init__(name, **params)

    def config(self, **params: Any) -> Any:
        params.update(ip=None, mac=None, defaultRoute=None)
        r = super().config(**params)
        intf = self.defaultIntf()
        if self.lab_host is not None and intf is not None:
            for cmd in self.lab_host.setup_commands(intf.name):
                out = self.cmd(shlex.join(cmd) + "; echo rc=$?")
                if not out.rstrip().endswith("rc=0"):
                    raise RuntimeError(f"{self.name}: {shlex.join(cmd)}: {out.strip()}")
        return r


class FatflowTopo(Topo):  # type: ignore[misc]
    """One switch (``switch_name``) and a host per :class:`LabHost` of the plan, on its port."""

    def build(self, plan: LabPlan, switch_name: str = "ffm1", **switch_params: Any) -> None:
        s = self.addSwitch(switch_name, **switch_params)
        for h in plan.hosts:
            self.addHost(h.name, cls=FatflowHost, lab_host=h)
            self.addLink(h.name, s, port1=0, port2=h.port)


@dataclass
class MininetLab:
    net: Any  # mininet.net.Mininet
    plan: LabPlan
    switch: P4RuntimeSwitch
    fatflowd: subprocess.Popen[bytes]
    config: Path  # what fatflowd runs with (the switch address is the Mininet switch's)

    def host(self, name: str) -> Any:
        return self.net.get(name)


@contextlib.contextmanager
def mininet_lab(config: Path, work: Path, *, target: str = "softswitch", switch: str | None = None,
                switch_name: str = "ffm1", p4info: Path | None = None, device_config: Path | None = None,
                timeout: float = 90.0) -> Iterator[MininetLab]:
    """The configuration's lab as a Mininet network plus fatflowd (primary, configuration applied)
    for the block; everything is stopped and removed afterwards, also on failure."""
    cfg = load_config(config)
    plan = build_plan(cfg, switch)
    sw_cfg = plan.switch
    if target == "bmv2":
        p4info, device_config = p4info or lab.BMV2_P4INFO, device_config or lab.BMV2_JSON
    work.mkdir(parents=True, exist_ok=True)
    marker = f"ffm:{work.resolve()}"
    cls: type[P4RuntimeSwitch] = Bmv2Switch if target == "bmv2" else SoftSwitch
    topo = FatflowTopo(plan, switch_name=switch_name, device_id=sw_cfg.device_id, cpu_port=sw_cfg.cpu_port,
                       log_dir=str(work), env={"FATFLOW_LAB": marker})
    net = Mininet(topo=topo, switch=cls, controller=None, build=False, autoSetMacs=False)
    ffd: subprocess.Popen[bytes] | None = None
    try:
        net.build()
        net.start()
        node: P4RuntimeSwitch = net.get(switch_name)
        eff, _ = lab.effective_config(cfg, sw_cfg, address=node.grpc_address, p4info=p4info,
                                      device_config=device_config, api_listen=f"127.0.0.1:{free_port()}")
        eff_path = work / "fatflowd.yaml"
        eff_path.write_text(config_to_yaml(eff))
        ffd_log = work / "fatflowd.log"
        ffd = lab.start_fatflowd(eff_path, ffd_log, marker)
        lab.wait_fatflowd_ready(ffd, ffd_log, sw_cfg.name, time.monotonic() + timeout,
                                others=[(target, node.proc, node.log_file)] if node.proc else [])
        yield MininetLab(net, plan, node, ffd, eff_path)
    finally:
        if ffd is not None:
            lab.stop_process(ffd)
        for node in net.switches:
            if isinstance(node, P4RuntimeSwitch):
                node.stop_process()
        net.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m topo.mininet_topo", description="The lab of a fatflowd "
                                 "configuration as a Mininet network, with fatflowd, and Mininet's CLI.")
    ap.add_argument("config", type=Path)
    ap.add_argument("--target", choices=("softswitch", "bmv2"), default="softswitch")
    ap.add_argument("--switch", default=None, help="the switch of the file (default: the first)")
    ap.add_argument("--work", type=Path, default=lab.REPO / "build" / "mininet", help="logs and fatflowd.yaml")
    ap.add_argument("--no-cli", action="store_true", help="ping once across the switch and exit")
    args = ap.parse_args(argv)
    reason = mininet_skip_reason()
    if reason:
        print(f"topo.mininet_topo: {reason}", file=sys.stderr)
        return 1
    setLogLevel("info")
    with mininet_lab(args.config, args.work, target=args.target, switch=args.switch) as ml:
        print(f"fatflowd (pid {ml.fatflowd.pid}) is primary; switch {ml.switch.name} on {ml.switch.grpc_address}; "
              f"logs in {args.work}")
        if args.no_cli:
            vms, fabs = ml.plan.by_role("vm"), ml.plan.by_role("fabric")
            if vms and fabs and fabs[0].address(4):
                print(ml.host(vms[0].name).cmd(f"ping -c 3 -W 2 {fabs[0].address(4)}"))
        else:
            from mininet.cli import CLI  # type: ignore

            CLI(ml.net)
    return 0


if __name__ == "__main__":
    sys.exit(main())
