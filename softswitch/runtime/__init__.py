"""P4Runtime for softswitch: the gRPC server (:mod:`softswitch.runtime.server`) and the
translation between P4Runtime entities and the table / extern / PRE model."""

from __future__ import annotations

from softswitch.runtime.errors import P4RTError
from softswitch.runtime.server import P4RUNTIME_API_VERSION, P4RuntimeServer, compare_p4info

__all__ = ["P4RTError", "P4RUNTIME_API_VERSION", "P4RuntimeServer", "compare_p4info"]
