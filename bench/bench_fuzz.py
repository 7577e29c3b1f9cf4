"""The fuzz of tests/integration/test_robust_fuzz.py at full size: hostile frames through a softswitch
process learning under fatflowd (in this process), with every check of the test.

    .venv/bin/python bench/bench_fuzz.py [--frames 1000000] [--seed 20261130]

Prints one JSON object: frames, seconds, frames/s, forwarded, dropped, flows, frames per kind,
switch RSS and controller RSS after the run, and ``ok`` (every check passed). Exit status 1 if a
check failed, the switch died, or an error/traceback was logged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))


async def run(frames: int, seed: int, lifetime: int = 3600) -> dict[str, Any]:
    logging.getLogger("finsy").setLevel(logging.ERROR)
    from apitest import free_port
    from ffd import config_dict, running_fatflowd, write_config
    from robusttools import ErrorLog, rss_kib
    from targets import pipeline_for, switch_process
    from test_robust_fuzz import run_fuzz

    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        t = Path(tmp)
        build = pipeline_for(t / "build")
        with switch_process(t / "sw") as sw:
            cfg = config_dict([("sw1", sw, 10)], build, flowtable={"max_flows": 131072,
                                                                         "lifetime": {"default": lifetime}})
            cfg["api"] = {"listen": f"127.0.0.1:{free_port()}", "metrics_listen": None}
            write_config(t / "ff.yaml", cfg)
            t0 = time.perf_counter()
            with ErrorLog() as errors:
                async with running_fatflowd(t / "ff.yaml") as daemon:
                    node = daemon.nodes["sw1"]
                    try:
                        figures = await run_fuzz(sw, node, frames, seed)
                        figures["ok"] = True
                    except AssertionError as exc:
                        figures = {"frames": frames, "seed": seed, "ok": False, "failure": str(exc)[:2000]}
                    figures["session_connects"] = node.session.connects
                    figures["switch_rss_kib"] = rss_kib(sw.process.pid) if sw.process else 0
                    figures["controller_rss_kib"] = rss_kib()
            figures["total_seconds"] = round(time.perf_counter() - t0, 1)
            alive = sw.process is not None and sw.process.poll() is None
            log = sw.log()
            figures["switch_alive"] = alive
            figures["switch_log_clean"] = "Traceback" not in log and " ERROR" not in log
            figures["controller_errors"] = errors.texts()[:10]
            figures["ok"] = bool(figures["ok"] and alive and figures["switch_log_clean"] and not errors.records
                                 and node.session.connects == 1)
            return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--lifetime", type=int, default=3600,
                    help="flow lifetime, s (default 3600, longer than the run: no expiry takes a key the check expects)")
    args = ap.parse_args()
    result = asyncio.run(run(args.frames, args.seed, args.lifetime))
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
