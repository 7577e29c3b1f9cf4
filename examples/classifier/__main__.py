"""``python -m examples.classifier --source SRC --api HOST:PORT``: run the classifier.

SRC is the analyzer port's far end: ``unix:PATH`` (a softswitch Unix-socket port, rootless),
``IFNAME`` or ``NETNS:IFNAME`` (an AF_PACKET socket, root; e.g. ``ffl-analyzer:eth0`` in a lab).
Stops on SIGINT/SIGTERM (or after ``--duration`` seconds) and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from p4fatflow.api.client import AsyncFatflowClient, env_address

from examples.classifier.app import DEFAULT_LIFETIMES, ClassifierApp, Options, human
from examples.classifier.classify import FlowClass
from examples.classifier.sources import open_source


def _lifetime(text: str) -> tuple[FlowClass, int]:
    name, _, secs = text.partition("=")
    try:
        return FlowClass(name), int(secs)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CLASS=SECONDS with CLASS one of "
                                         f"{', '.join(c.value for c in FlowClass)}: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m examples.classifier", description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="unix:PATH | IFNAME | NETNS:IFNAME")
    ap.add_argument("--api", default=env_address(), help="fatflowd API address (default $FATFLOW_API or %(default)s)")
    ap.add_argument("--token-file", help="bearer token file of the API")
    ap.add_argument("--switch", default="", help="switch name (when fatflowd drives several)")
    ap.add_argument("--lifetime", type=_lifetime, action="append", default=[], metavar="CLASS=SECONDS",
                    help="lifetime per class (defaults: " + ", ".join(f"{c.value}={s}" for c, s in
                                                                     DEFAULT_LIFETIMES.items()) + ")")
    ap.add_argument("--give-up", type=int, default=6, help="copies without a class before 'other' (%(default)s)")
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    ap.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    args = ap.parse_args(argv)
    opts = Options(give_up=args.give_up, switch=args.switch)
    opts.lifetimes.update(dict(args.lifetime))

    def emit(ev: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(ev), flush=True)
        else:
            line = human(ev)
            if line:
                print(line, flush=True)

    source = open_source(args.source)  # before anything else: AF_PACKET in a netns uses setns

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.duration:
            loop.call_later(args.duration, stop.set)
        async with AsyncFatflowClient(args.api, token_file=args.token_file) as client:
            await ClassifierApp(source, client, opts, emit).run(stop)

    try:
        asyncio.run(run())
    finally:
        source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
