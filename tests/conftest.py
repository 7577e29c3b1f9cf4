"""Fixtures shared by the whole suite: the golden key cases, read where they stand.

The golden file lives outside the repository (``../shared/spec/key-cases.json`` relative to the repo
root); ``FATFLOW_SPEC_DIR`` points elsewhere. Tests never carry a copy of it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_MISSING = "<key-cases.json missing>"


def key_cases_path() -> Path:
    """Where the golden key cases are: $FATFLOW_SPEC_DIR or <repo root>/../shared/spec."""
    spec_dir = Path(os.environ.get("FATFLOW_SPEC_DIR", REPO_ROOT.parent / "shared" / "spec"))
    return spec_dir / "key-cases.json"


def _load_cases() -> list[dict[str, Any]] | None:
    path = key_cases_path()
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    cases = data["cases"] if isinstance(data, Mapping) else data
    return list(cases)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrise by case name at collection time; a missing file yields one test that fails loudly
    # (through the key_cases fixture) instead of silently collecting nothing.
    if "key_case_name" in metafunc.fixturenames:
        cases = _load_cases()
        names = [c["name"] for c in cases] if cases is not None else [_MISSING]
        metafunc.parametrize("key_case_name", names)


@pytest.fixture(scope="session")
def key_cases() -> list[dict[str, Any]]:
    """All golden cases from key-cases.json (fails with the path tried if the file is absent)."""
    cases = _load_cases()
    if cases is None:
        pytest.fail(
            f"golden key cases not found at {key_cases_path()}: set FATFLOW_SPEC_DIR to the directory "
            "holding key-cases.json (the shared spec directory)",
            pytrace=False,
        )
    return cases


@pytest.fixture
def key_case(key_cases: list[dict[str, Any]], key_case_name: str) -> dict[str, Any]:
    """The golden case named by the ``key_case_name`` parameter."""
    matches = [c for c in key_cases if c["name"] == key_case_name]
    assert len(matches) == 1, f"golden case {key_case_name!r} appears {len(matches)} times"
    return matches[0]


# ---- asyncio errors nobody awaited ------------------------------------------------------------
# A task destroyed while pending, an exception never retrieved, a gRPC completion for a closed loop:
# asyncio only logs these, so a test passes over them. Fail the test during which one is logged
# (it is this test's code or the test right before it that leaked).


class _AsyncioErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = f" ({record.exc_info[1]!r})" if record.exc_info else ""
        self.texts.append(record.getMessage().splitlines()[0][:300] + exc)


@pytest.fixture(autouse=True)
def no_unhandled_asyncio_errors() -> Iterator[None]:
    handler = _AsyncioErrors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.texts:
        pytest.fail("asyncio logged errors during this test (a leaked task or gRPC call):\n  "
                    + "\n  ".join(handler.texts), pytrace=False)
