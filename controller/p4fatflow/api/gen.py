"""Generate the Python code of ``fatflow.proto`` into ``_gen/`` (not committed).

    python -m p4fatflow.api.gen        (what ``make proto`` and scripts/bootstrap.sh run)

:func:`ensure_generated` runs the same on first import when ``_gen/`` is missing or older than the
.proto, so a fresh clone plus ``pip install -e .`` works without a separate step.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

__all__ = ["PROTO", "GEN_DIR", "generate", "ensure_generated"]

HERE = Path(__file__).resolve().parent
PROTO = HERE / "fatflow.proto"
GEN_DIR = HERE / "_gen"
_OUTPUTS = ("fatflow_pb2.py", "fatflow_pb2_grpc.py")


def _stale() -> bool:
    try:
        proto_mtime = PROTO.stat().st_mtime
        return any((GEN_DIR / name).stat().st_mtime < proto_mtime for name in (*_OUTPUTS, "__init__.py"))
    except FileNotFoundError:
        return True


def generate(out_dir: Path = GEN_DIR) -> None:
    """Run grpc_tools.protoc on fatflow.proto; imports in the gRPC module are made relative."""
    try:
        from grpc_tools import protoc  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - an install without the dependency
        raise ImportError("p4fatflow.api needs grpcio-tools to generate its protobuf code "
                          "(pip install -e .; then make proto)") from exc
    import importlib.resources

    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        args = ["grpc_tools.protoc", f"-I{HERE}", f"-I{well_known}", f"--python_out={tmp}", f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}", str(PROTO)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {PROTO}")
        out_dir.mkdir(exist_ok=True)
        for name in os.listdir(tmp):
            text = (Path(tmp) / name).read_text()
            text = re.sub(r"^import fatflow_pb2 as", "from . import fatflow_pb2 as", text, flags=re.M)
            # write then rename: a concurrent importer never sees half a file
            part = out_dir / f".{name}.{os.getpid()}"
            part.write_text(text)
            part.replace(out_dir / name)
        init = out_dir / "__init__.py"
        part = out_dir / f".__init__.py.{os.getpid()}"
        part.write_text('"""Generated from ../fatflow.proto by p4fatflow.api.gen (make proto). Do not edit."""\n')
        part.replace(init)


def ensure_generated() -> None:
    if _stale():
        generate()


if __name__ == "__main__":
    generate()
    print(f"generated {', '.join(_OUTPUTS)} in {GEN_DIR}", file=sys.stderr)
