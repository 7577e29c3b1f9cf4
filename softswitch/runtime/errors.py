"""The one exception type of the runtime: a P4Runtime error with its canonical code."""

from __future__ import annotations

from finsy.proto import rpc_code

__all__ = ["P4RTError", "Code"]

Code = rpc_code


class P4RTError(Exception):
    """An error reported to the client with google.rpc canonical ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{rpc_code.Code.Name(self.code)}: {self.message}"
