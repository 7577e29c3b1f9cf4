"""``softswitch`` command line, modelled on simple_switch_grpc.

    softswitch [--device-id N] [-i PORT@IFACE ...] [--cpu-port N]
               [--grpc-server-addr HOST:PORT] [--pcap DIR] [--log-level L]
               [--grpc-server-ssl --grpc-server-cert PEM --grpc-server-key PEM
                [--grpc-server-cacert PEM [--grpc-server-with-client-auth]]]
               [-I DIR] [-D X] [--no-p4 | PROG.p4]
    softswitch compile PROG.p4 [-I DIR] [-D X] [--p4runtime-files OUT.p4info.txtpb] [-o OUT.p4]

With PROG.p4 the program is compiled and committed before serving (as BMv2 does with
its JSON); a controller may still push another one. Once the gRPC server is bound the
line ``softswitch: listening on HOST:PORT`` is printed (and flushed). The TLS flags are
simple_switch_grpc's: ``--grpc-server-ssl`` serves P4Runtime over TLS with the certificate and key
given; ``--grpc-server-cacert`` verifies client certificates, ``--grpc-server-with-client-auth``
requires one. SIGINT / SIGTERM
stop it cleanly. Any user error (bad arguments, unreadable or invalid program, port or
address in use) is one message on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "run_parser", "compile_parser"]

_LOG_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
               "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
               "off": logging.CRITICAL + 10}


class UsageError(Exception):
    """A user error: printed as ``softswitch: error: <message>``, exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse exits with status 2; simple_switch and our contract say 1
        self.print_usage(sys.stderr)
        raise UsageError(message)


def run_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="softswitch", description="Pure-Python v1model switch with a P4Runtime server "
                "(`softswitch compile -h` for the compiler).")
    p.add_argument("program", nargs="?", metavar="PROG.p4", help="P4_16 v1model program to load at start")
    p.add_argument("--no-p4", action="store_true", help="start without a program (wait for a controller)")
    p.add_argument("--device-id", type=int, default=0, help="P4Runtime device id (default 0)")
    p.add_argument("-i", "--interface", action="append", default=[], metavar="PORT@IFACE",
                   help="attach port PORT to interface IFACE, or to a Unix datagram socket with "
                        "PORT@unix:PATH (repeatable)")
    p.add_argument("--cpu-port", type=int, default=None, help="CPU port for packet-in/out")
    p.add_argument("--grpc-server-addr", default="0.0.0.0:9559", metavar="HOST:PORT",
                   help="P4Runtime gRPC address (default 0.0.0.0:9559; port 0 picks a free port)")
    p.add_argument("--grpc-server-ssl", action="store_true",
                   help="serve P4Runtime over TLS (needs --grpc-server-cert and --grpc-server-key)")
    p.add_argument("--grpc-server-cacert", metavar="PEM", default=None,
                   help="CA certificate to verify client certificates against")
    p.add_argument("--grpc-server-cert", metavar="PEM", default=None, help="server certificate (chain)")
    p.add_argument("--grpc-server-key", metavar="PEM", default=None, help="server private key")
    p.add_argument("--grpc-server-with-client-auth", action="store_true",
                   help="require a client certificate signed by --grpc-server-cacert (mutual TLS)")
    p.add_argument("--pcap", metavar="DIR", default=None, help="write per-port pcap files to DIR")
    p.add_argument("--log-level", default="info", choices=sorted(_LOG_LEVELS), help="log level (default info)")
    p.add_argument("--idle-sweep-interval", type=float, default=1.0, metavar="SECONDS",
                   help="idle-timeout scan / re-notification interval (default 1 s, as BMv2)")
    p.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR",
                   help="include directory for PROG.p4 (a pipeline pushed over P4Runtime must be "
                        "self-contained: softswitch compile -o)")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="X[=V]",
                   help="preprocessor define for PROG.p4")
    return p


def compile_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="softswitch compile", description="Check a P4_16 v1model program and write its P4Info.")
    p.add_argument("program", metavar="PROG.p4")
    p.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="X[=V]")
    p.add_argument("--p4runtime-files", default=None, metavar="FILES",
                   help="comma-separated output files; format by suffix as p4c: .txt/.txtpb text, "
                        ".json JSON, .bin binary")
    p.add_argument("-o", dest="output", default=None, metavar="OUT.p4",
                   help="write the device config: the preprocessed, self-contained program that "
                        "SetForwardingPipelineConfig takes (softswitch's counterpart of BMv2's JSON)")
    return p


def _load(path: str, include_dirs: Sequence[str], defines: Sequence[str]) -> object:
    from softswitch.device import CompileError, Device

    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    dirs = [*include_dirs, os.path.dirname(os.path.abspath(path))]
    try:
        return Device.compile(source, path, dirs, defines)
    except CompileError as e:
        raise UsageError(f"{path} does not compile:\n{e}") from None


def _write_p4info(info: object, files: str) -> None:
    from google.protobuf import json_format

    from softswitch.p4info import p4info_to_text

    for name in [f for f in files.split(",") if f]:
        if name.endswith((".txt", ".txtpb")):
            data: bytes = p4info_to_text(info).encode()  # type: ignore[arg-type]
        elif name.endswith(".json"):
            data = json_format.MessageToJson(info).encode()  # type: ignore[arg-type]
        elif name.endswith(".bin"):
            data = info.SerializeToString()  # type: ignore[attr-defined]
        else:
            raise UsageError(f"{name}: unknown P4Runtime file suffix (use .txtpb, .txt, .json or .bin)")
        try:
            with open(name, "wb") as f:
                f.write(data)
        except OSError as e:
            raise UsageError(f"cannot write {name}: {e}") from None


def _compile_main(argv: Sequence[str]) -> int:
    from softswitch.p4info import P4InfoError, build_p4info

    args = compile_parser().parse_args(list(argv))
    loaded = _load(args.program, args.include_dirs, args.defines)
    try:
        info = build_p4info(loaded.ir)  # type: ignore[attr-defined]
    except P4InfoError as e:
        raise UsageError(f"{args.program}: {e}") from None
    if args.p4runtime_files:
        _write_p4info(info, args.p4runtime_files)
    if args.output:
        _write_device_config(args.program, args.include_dirs, args.defines, args.output)
    return 0


def _write_device_config(path: str, include_dirs: Sequence[str], defines: Sequence[str], out: str) -> None:
    from softswitch.frontend.preprocess import flatten

    with open(path, encoding="utf-8") as f:
        source = f.read()
    dirs = [*include_dirs, os.path.dirname(os.path.abspath(path))]
    text = flatten(source, path, dirs, defines, real_path=path)
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e}") from None


def _split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not host:
        raise UsageError(f"--grpc-server-addr {addr!r}: expected HOST:PORT")
    try:
        p = int(port)
    except ValueError:
        raise UsageError(f"--grpc-server-addr {addr!r}: port {port!r} is not a number") from None
    if not 0 <= p <= 65535:
        raise UsageError(f"--grpc-server-addr {addr!r}: port out of range")
    return host, p


async def _serve(args: argparse.Namespace, loaded: object | None) -> int:
    from softswitch.device import Device
    from softswitch.p4info import P4InfoError
    from softswitch.ports import PortSpecError, attach_ports
    from softswitch.runtime.server import P4RuntimeServer

    host, _ = _split_addr(args.grpc_server_addr)
    credentials = _tls(args)
    device = Device(device_id=args.device_id, cpu_port=args.cpu_port)
    server = P4RuntimeServer(device, idle_sweep_interval=args.idle_sweep_interval)
    if loaded is not None:
        try:
            server.install(loaded)  # type: ignore[arg-type]
        except P4InfoError as e:
            raise UsageError(f"{args.program}: {e}") from None
    closables: list[object] = []
    try:
        closables = attach_ports(device, args.interface, pcap_dir=args.pcap)
    except PortSpecError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot open ports: {e}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            port = await server.start(args.grpc_server_addr, credentials)
        except (OSError, RuntimeError) as e:
            raise UsageError(f"cannot listen on {args.grpc_server_addr}: {e}") from None
        print(f"softswitch: listening on {host}:{port}{' (TLS)' if credentials else ''}", flush=True)
        await stop.wait()
        logging.getLogger("softswitch").info("shutting down")
    finally:
        await server.stop(0.5)
        for c in closables:
            with contextlib.suppress(Exception):
                c.close()  # type: ignore[attr-defined]
    return 0


def _check_tls(args: argparse.Namespace) -> None:
    """simple_switch_grpc's TLS flags, checked before anything starts."""
    files = {"--grpc-server-cacert": args.grpc_server_cacert, "--grpc-server-cert": args.grpc_server_cert,
             "--grpc-server-key": args.grpc_server_key}
    if not args.grpc_server_ssl:
        given = [flag for flag, value in files.items() if value] + (
            ["--grpc-server-with-client-auth"] if args.grpc_server_with_client_auth else [])
        if given:
            raise UsageError(f"{', '.join(given)} given without --grpc-server-ssl")
        return
    if not args.grpc_server_cert or not args.grpc_server_key:
        raise UsageError("--grpc-server-ssl needs --grpc-server-cert and --grpc-server-key")
    if args.grpc_server_with_client_auth and not args.grpc_server_cacert:
        raise UsageError("--grpc-server-with-client-auth needs --grpc-server-cacert")
    for flag, value in files.items():
        if value:
            try:
                with open(value, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise UsageError(f"{flag} {value}: cannot read: {e.strerror or e}") from None
            if b"-----BEGIN" not in data:
                raise UsageError(f"{flag} {value}: not a PEM file")


def _tls(args: argparse.Namespace) -> Any:
    """Server credentials from the TLS flags (checked by _check_tls), or None for plaintext."""
    if not args.grpc_server_ssl:
        return None
    from softswitch.runtime.server import tls_credentials

    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    return tls_credentials(read(args.grpc_server_cert), read(args.grpc_server_key),
                           read(args.grpc_server_cacert) if args.grpc_server_cacert else None,
                           require_client_auth=args.grpc_server_with_client_auth)


def _check_numbers(args: argparse.Namespace) -> None:
    """Values argparse accepts but the switch cannot serve with: a device id P4Runtime
    cannot carry (uint64) would make every arbitration fail; a CPU port outside v1model's
    9-bit ports is unreachable; a non-positive or NaN sweep interval spins the loop."""
    if not 0 <= args.device_id < 1 << 64:
        raise UsageError(f"--device-id {args.device_id}: must be in 0..{(1 << 64) - 1}")
    if args.cpu_port is not None and not 0 <= args.cpu_port < 512:
        raise UsageError(f"--cpu-port {args.cpu_port}: must be a v1model port, 0..511")
    if not (args.idle_sweep_interval > 0 and math.isfinite(args.idle_sweep_interval)):
        raise UsageError(f"--idle-sweep-interval {args.idle_sweep_interval}: must be a positive number of seconds")


def _run_main(argv: Sequence[str]) -> int:
    args = run_parser().parse_args(list(argv))
    if args.no_p4 and args.program:
        raise UsageError("give either PROG.p4 or --no-p4, not both")
    logging.basicConfig(level=_LOG_LEVELS[args.log_level], stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    _split_addr(args.grpc_server_addr)
    _check_numbers(args)
    _check_tls(args)
    from softswitch.ports import PortSpecError, parse_port_spec

    for spec in args.interface:
        try:
            parse_port_spec(spec)
        except PortSpecError as e:
            raise UsageError(str(e)) from None
    loaded = _load(args.program, args.include_dirs, args.defines) if args.program else None
    return asyncio.run(_serve(args, loaded))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "compile":
            return _compile_main(argv[1:])
        return _run_main(argv)
    except UsageError as e:
        print(f"softswitch: error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # a bug: still one line and status 1 (traceback with --log-level debug)
        logging.getLogger("softswitch").debug("internal error", exc_info=True)
        print(f"softswitch: internal error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
