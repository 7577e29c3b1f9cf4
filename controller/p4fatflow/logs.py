"""fatflowd's logging set-up: text lines (default) or JSON lines (``--log-format json``).

A JSON line carries ``time``, ``level``, ``logger`` and ``message``, and as separate fields what the
record knows in structured form:

- ``extra=`` fields given by the caller (``event``, ``switch``, counts...);
- ``switch`` and ``event`` for the flow layer's and the session's messages, which all read
  ``"switch %s: <what happened>..."`` (``switch`` is the first argument; ``event`` is the words up
  to the first non-letter, as an identifier: ``"switch %s: session ended: %s"`` -> ``session_ended``);
- an :class:`~p4fatflow.node.ApplyReport` logged as an argument (reconciliation, reloads) becomes
  ``event: apply`` with ``switch``, ``inserted``, ``modified``, ``deleted``, ``failed``,
  ``flows_flushed`` and ``entries``.

No secret reaches a log: the configuration holds only paths to secrets, and an ``extra`` field whose
name suggests one (token, password, secret, authorization, private key) is replaced by ``"***"``.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

__all__ = ["FORMATS", "StructuredFields", "setup_logging"]

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SWITCH_MSG = re.compile(r"^switch %s: ([a-z][a-z ]*[a-z])")
_SECRET = re.compile(r"token|password|passwd|secret|authorization|private_key|credential", re.I)
_REPORT_FIELDS = ("inserted", "modified", "deleted", "failed", "flows_flushed", "entries")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class StructuredFields(logging.Filter):
    """Adds ``switch``/``event``/counts to records (see the module docstring); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        report = next((a for a in args if type(a).__name__ == "ApplyReport" and hasattr(a, "switch")), None)
        if report is not None:
            if not hasattr(record, "event"):
                record.event = "apply"
            record.switch = report.switch
            for f in _REPORT_FIELDS:
                setattr(record, f, getattr(report, f))
        elif not hasattr(record, "event"):
            m = _SWITCH_MSG.match(record.msg) if isinstance(record.msg, str) else None
            if m is not None and args:
                record.event = m.group(1).replace(" ", "_")
                if not hasattr(record, "switch"):
                    record.switch = str(args[0])
        for name in list(record.__dict__):
            if name not in _STANDARD and _SECRET.search(name):
                record.__dict__[name] = "***"
        return True


def _json_formatter() -> logging.Formatter:
    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         datefmt="%Y-%m-%dT%H:%M:%S%z", json_default=str)


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger for fatflowd (replacing its handlers); returns the handler."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(StructuredFields())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("finsy").setLevel(logging.ERROR)
    return handler

