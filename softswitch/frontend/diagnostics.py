"""Frontend diagnostics in p4c style (``file:line:col: error: message``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from softswitch import ir

__all__ = ["Diagnostic", "FrontendError", "did_you_mean"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    pos: ir.Pos
    severity: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message}"


class FrontendError(Exception):
    """The program could not be loaded; ``diagnostics`` says why (at least one error)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
