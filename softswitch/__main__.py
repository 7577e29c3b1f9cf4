"""``python -m softswitch``: the softswitch command line (see softswitch.cli)."""

from __future__ import annotations

import sys

from softswitch.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
