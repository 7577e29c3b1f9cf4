"""``python -m topo``: network-namespace labs generated from a fatflowd configuration.

    python -m topo up CONFIG [--switch NAME] [--target softswitch|bmv2] [--run-dir DIR] [--prefix P]
                             [--grpc-addr HOST:PORT] [--p4info FILE] [--device-config FILE]
    python -m topo down [--run-dir DIR] [--prefix P]
    python -m topo status [--run-dir DIR]
    python -m topo flows [--run-dir DIR]
    python -m topo plan CONFIG [--switch NAME] [--prefix P]     (no root needed: what up would build)

Exit status: 0 done, 1 the lab could not be built (everything it created is removed again),
2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p4fatflow.settings import ConfigFileError, load_config

from topo import lab
from topo.plan import LabPlanError, build_plan

__all__ = ["main"]


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m topo", description="Network-namespace labs around a fatflowd "
                                 "switch, generated from the fatflowd configuration (docs/labs.md).")
    sub = ap.add_subparsers(dest="command", required=True)
    default_run = lab.REPO / "build" / "lab"

    def common(p: argparse.ArgumentParser, *, prefix_default: str | None) -> None:
        p.add_argument("--run-dir", type=Path, default=default_run, help=f"state and logs (default {default_run})")
        p.add_argument("--prefix", default=prefix_default,
                       help="name prefix of namespaces and links (default ffl; down: the run dir's)")

    p = sub.add_parser("up", help="build the lab and start the switch and fatflowd in the background")
    p.add_argument("config", type=Path)
    p.add_argument("--switch", default=None, help="the switch of the file (default: the first)")
    p.add_argument("--target", choices=("softswitch", "bmv2"), default="softswitch")
    p.add_argument("--grpc-addr", default=None, help="P4Runtime address instead of the switch's 'address' "
                   "(fatflowd then runs with a copy of the configuration saying so)")
    p.add_argument("--p4info", type=Path, default=None, help="P4Info instead of the configuration's")
    p.add_argument("--device-config", type=Path, default=None, help="device config instead of the configuration's")
    p.add_argument("--api-listen", default=None, metavar="HOST:PORT",
                   help="fatflowd's API address instead of the configuration's (metrics off)")
    p.add_argument("--timeout", type=float, default=90.0)
    common(p, prefix_default="ffl")
    p = sub.add_parser("down", help="remove the lab (also after a crash; idempotent)")
    common(p, prefix_default=None)
    p = sub.add_parser("status", help="the lab's processes and hosts")
    common(p, prefix_default=None)
    p = sub.add_parser("flows", help="the switch's flow tables, read over P4Runtime")
    common(p, prefix_default=None)
    p = sub.add_parser("plan", help="print the hosts and their set-up commands (changes nothing)")
    p.add_argument("config", type=Path)
    p.add_argument("--switch", default=None)
    p.add_argument("--prefix", default="ffl")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "plan":
            plan = build_plan(load_config(args.config), args.switch, prefix=args.prefix)
            for h in plan.hosts:
                print(f"{plan.namespace(h)}: {h.role} on port {h.port} ({plan.switch_ifname(h.port)}), {h.mac}")
                for cmd in h.setup_commands("eth0"):
                    print("   ", " ".join(cmd))
            return 0
        if args.command == "up":
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, _interrupt)  # removed again as on Ctrl-C
            state = lab.up(args.config, switch=args.switch, target=args.target, run_dir=args.run_dir,
                           prefix=args.prefix, address=args.grpc_addr, p4info=args.p4info,
                           device_config=args.device_config, api_listen=args.api_listen,
                           timeout=args.timeout)
            print(lab.usage(state))
            return 0
        if args.command == "down":
            found = lab.down(args.run_dir, args.prefix)
            print(f"lab down: removed {found}")
            return 0
        if args.command == "status":
            print(lab.status(args.run_dir))
            return 0
        if args.command == "flows":
            from topo.flows import format_flows, read_flows

            running = lab.read_state(args.run_dir.resolve())
            if running is None:
                print(f"topo: no lab in {args.run_dir}", file=sys.stderr)
                return 1
            print(format_flows(read_flows(running.address, running.device_id, Path(running.p4info),
                                          running.cpu_port)))
            return 0
    except ConfigFileError as exc:
        print(f"topo: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except (LabPlanError, KeyError) as exc:
        print(f"topo: {exc}", file=sys.stderr)
        return 2
    except lab.LabError as exc:
        print(f"topo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("topo: interrupted; the lab was removed", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
