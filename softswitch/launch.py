"""Run softswitch as a separate process, as a lab, a test or a demo runs a switch.

:func:`start_softswitch` gives a :class:`Target`: a softswitch subprocess serving
P4Runtime on an unused loopback port, its data ports on Unix datagram sockets (no root
needed), and a :class:`softswitch.ports.UnixPortPeer` per port to send and receive
frames. Controllers then push the pipeline over P4Runtime exactly as they would to
simple_switch_grpc. :func:`compile_pipeline` writes the device config and P4Info that
such a push needs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from softswitch.ports import UnixPortPeer

__all__ = ["PipelineBuild", "compile_pipeline", "Target", "start_softswitch", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PipelineBuild:
    """What `softswitch compile` writes: the device config and the P4Info."""

    device_config: Path
    p4info: Path


def compile_pipeline(out_dir: Path, source: Path, include_dirs: Sequence[str] = ()) -> PipelineBuild:
    """Run ``softswitch compile`` on ``source``: ``<out_dir>/<stem>.p4`` (device config)
    and ``<out_dir>/<stem>.p4info.txtpb``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = out_dir / (source.stem + ".p4")
    info = out_dir / (source.stem + ".p4info.txtpb")
    proc = subprocess.run(
        [sys.executable, "-m", "softswitch", "compile", str(source), "-o", str(dev),
         "--p4runtime-files", str(info), *[f"-I{d}" for d in include_dirs]],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"softswitch compile failed:\n{proc.stdout}\n{proc.stderr}")
    return PipelineBuild(dev, info)


@dataclass
class Target:
    address: str
    device_id: int
    cpu_port: int
    process: subprocess.Popen[str]
    peers: dict[int, UnixPortPeer] = field(default_factory=dict)
    log_path: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@contextlib.contextmanager
def start_softswitch(workdir: Path, ports: Sequence[int] = (1, 2, 3, 4), *, cpu_port: int = 255,
                     device_id: int = 1, program: Path | None = None,
                     extra_args: Sequence[str] = ()) -> Iterator[Target]:
    """Run ``softswitch`` as a subprocess until the block ends; its log goes to
    ``<workdir>/softswitch.log``. Raises RuntimeError if it does not come up."""
    workdir.mkdir(parents=True, exist_ok=True)
    sockdir = Path(os.environ.get("FATFLOW_SOCK_DIR", "/tmp")) / f"ss-{os.getpid()}-{time.monotonic_ns()}"
    sockdir.mkdir(parents=True)  # short path: AF_UNIX paths are limited to 108 bytes
    port = free_port()
    address = f"127.0.0.1:{port}"
    args = [sys.executable, "-m", "softswitch", "--device-id", str(device_id), "--cpu-port", str(cpu_port),
            "--grpc-server-addr", address, "--log-level", "info"]
    for p in ports:
        args += ["-i", f"{p}@unix:{sockdir / f'p{p}'}"]
    args += list(extra_args)
    args += [str(program)] if program else ["--no-p4"]
    log_path = workdir / "softswitch.log"
    log = log_path.open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True)
    target = Target(address, device_id, cpu_port, proc, log_path=log_path)
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in target.log():
            if proc.poll() is not None:
                raise RuntimeError(f"softswitch exited with {proc.returncode}:\n{target.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"softswitch did not start within 60 s:\n{target.log()}")
            time.sleep(0.05)
        for p in ports:
            target.peers[p] = UnixPortPeer(str(sockdir / f"p{p}"))
        yield target
    finally:
        for peer in target.peers.values():
            peer.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for f in sockdir.iterdir():
            with contextlib.suppress(OSError):
                f.unlink()
        with contextlib.suppress(OSError):
            sockdir.rmdir()
