"""Numeric options the switch cannot serve with are usage errors (exit 1, one line),
not a switch that starts and then refuses every controller or spins."""

from __future__ import annotations

import pytest

from softswitch.cli import main


@pytest.mark.parametrize(("opt", "value"), [
    ("--device-id", "-1"), ("--device-id", str(1 << 64)),
    ("--cpu-port", "-3"), ("--cpu-port", "512"),
    ("--idle-sweep-interval", "0"), ("--idle-sweep-interval", "-1"),
    ("--idle-sweep-interval", "nan"), ("--idle-sweep-interval", "inf"),
])
def test_out_of_range_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str], opt: str, value: str) -> None:
    assert main(["--no-p4", "--grpc-server-addr", "127.0.0.1:0", opt, value]) == 1
    err = capsys.readouterr().err
    assert f"softswitch: error: {opt} " in err, err
    assert "Traceback" not in err
