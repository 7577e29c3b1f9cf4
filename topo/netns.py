"""Network namespaces and veth pairs of a lab, and finding/removing them by name prefix.

Everything a lab creates is named after its prefix (``ffl`` by default): namespaces
``<prefix>-<host>``, the switch's veth ends ``<prefix>-p<port>`` in the root namespace (the host's
end is ``eth0`` inside its namespace). Processes the lab starts carry ``FATFLOW_LAB=<prefix>:<run
dir>`` in their environment. So a lab whose processes were killed, or whose state file is lost,
can still be found and removed completely (:func:`leftovers`, :func:`remove_leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from topo.plan import LabHost, LabPlan

__all__ = ["LAB_ENV", "NetnsError", "Leftovers", "run", "ns_exec", "create_host", "netns_names", "netns_pids",
           "lab_links", "marked_pids", "leftovers", "remove_leftovers", "stop_pids", "HOST_IFNAME"]

LAB_ENV = "FATFLOW_LAB"
HOST_IFNAME = "eth0"


class NetnsError(RuntimeError):
    pass


def run(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(args)}: exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def ns_exec(ns: str, args: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


def _sysctl_ns(ns: str, settings: Iterable[str]) -> None:
    for s in settings:
        run(ns_exec(ns, ["sysctl", "-q", "-w", s]))


def create_host(plan: LabPlan, host: LabHost, *, offload: bool = True) -> None:
    """The host's namespace, its veth pair (switch end ``<prefix>-p<port>`` up in the root
    namespace, IPv6 off there so the kernel sends nothing into the switch) and its configuration."""
    ns = plan.namespace(host)
    sw_if = plan.switch_ifname(host.port)
    run(["ip", "netns", "add", ns])
    # defaults for interfaces created in the namespace: quiet until configured
    _sysctl_ns(ns, ["net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=0"]
               if host.has_v6 else ["net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1"])
    run(["ip", "link", "add", sw_if, "type", "veth", "peer", "name", HOST_IFNAME, "netns", ns])
    run(["sysctl", "-q", "-w", f"net.ipv6.conf.{sw_if}.disable_ipv6=1"])
    if offload:
        run(["ethtool", "-K", sw_if, "rx", "off", "tx", "off", "sg", "off"])
    run(["ip", "link", "set", "dev", sw_if, "up"])
    for cmd in host.setup_commands(HOST_IFNAME, offload=offload):
        run(ns_exec(ns, cmd))


def netns_names(prefix: str) -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.split()]
    return [n for n in names if n.startswith(f"{prefix}-")]


def netns_pids(ns: str) -> list[int]:
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split()]


def lab_links(prefix: str) -> list[str]:
    """Links in the root namespace named ``<prefix>-...`` (the switch ends of a lab's veths)."""
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            name = parts[1].strip().split("@", 1)[0]
            if name.startswith(f"{prefix}-"):
                names.append(name)
    return names


def marked_pids(prefix: str) -> list[int]:
    """Processes whose environment carries ``FATFLOW_LAB=<prefix>:...`` (started by a lab)."""
    want = f"{LAB_ENV}={prefix}:".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if any(item.startswith(want) for item in env.split(b"\0")):
            pids.append(int(d.name))
    return sorted(pids)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_pids(pids: Iterable[int], *, timeout: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``timeout``; returns the pids that were running."""
    running = [p for p in dict.fromkeys(pids) if _alive(p)]
    for p in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in running) and time.monotonic() < deadline:
        _reap(running)
        time.sleep(0.05)
    for p in running:
        if _alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in running) and time.monotonic() < deadline:
        _reap(running)
        time.sleep(0.02)
    return running


def _reap(pids: Iterable[int]) -> None:
    for p in pids:  # our own children become zombies until waited for
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(p, os.WNOHANG)


@dataclass
class Leftovers:
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.namespaces or self.links or self.pids)

    def __str__(self) -> str:
        parts = []
        if self.pids:
            parts.append(f"processes {self.pids}")
        if self.namespaces:
            parts.append(f"namespaces {self.namespaces}")
        if self.links:
            parts.append(f"links {self.links}")
        return ", ".join(parts) or "nothing"


def leftovers(prefix: str) -> Leftovers:
    nss = netns_names(prefix)
    pids = marked_pids(prefix)
    for ns in nss:
        pids += netns_pids(ns)
    return Leftovers(nss, lab_links(prefix), sorted(set(pids)))


def remove_leftovers(prefix: str, extra_pids: Iterable[int] = ()) -> Leftovers:
    """Stop the lab's processes (marked ones, ``extra_pids``, and anything running inside its
    namespaces), delete its namespaces (which deletes their veth pairs) and any links left with
    its prefix. Idempotent; returns what was found."""
    found = leftovers(prefix)
    found.pids = stop_pids([*extra_pids, *found.pids])
    for ns in found.namespaces:
        stop_pids(netns_pids(ns), timeout=2.0)  # started inside since (e.g. by the user)
        run(["ip", "netns", "del", ns], check=False)
    for link in lab_links(prefix):
        run(["ip", "link", "del", link], check=False)
    return found
