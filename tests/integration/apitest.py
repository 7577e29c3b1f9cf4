"""Helpers of the API tests (test_api_*.py, test_fatflowctl*.py): fatflowd with its API on a free
loopback port, against a real target."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ffd import config_dict, running_fatflowd, write_config
from p4fatflow.daemon import Fatflowd
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

__all__ = ["free_port", "api_config", "api_daemon", "TOKEN"]

TOKEN = "s3cret-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_config(tmp_path: Path, switch: SwitchProcess, build: PipelineBuild, *, token: bool = False,
               **kw: Any) -> tuple[Path, str]:
    """Write fatflowd.yaml (ffd.config_dict with the API on a free port); returns (path, address)."""
    cfg = config_dict([("sw1", switch, 10)], build, **kw)
    address = f"127.0.0.1:{free_port()}"
    cfg["api"] = {"listen": address, "metrics_listen": None}
    if token:
        (tmp_path / "token").write_text(TOKEN + "\n")
        cfg["api"]["token_file"] = "token"
    path = tmp_path / "fatflowd.yaml"
    write_config(path, cfg)
    return path, address


@contextlib.asynccontextmanager
async def api_daemon(tmp_path: Path, switch: SwitchProcess, build: PipelineBuild, *, token: bool = False,
                     **kw: Any) -> AsyncIterator[tuple[Fatflowd, str]]:
    path, address = api_config(tmp_path, switch, build, token=token, **kw)
    async with running_fatflowd(path) as daemon:
        assert daemon.api.server is not None, "the API did not start"
        yield daemon, address
