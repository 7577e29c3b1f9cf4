"""The generated protobuf and gRPC modules of ``fatflow.proto`` (generated on first use, gen.py)."""

from __future__ import annotations

from p4fatflow.api.gen import ensure_generated

ensure_generated()

from p4fatflow.api._gen import fatflow_pb2 as pb  # noqa: E402
from p4fatflow.api._gen import fatflow_pb2_grpc as pb_grpc  # noqa: E402

__all__ = ["pb", "pb_grpc", "SERVICE_NAME"]

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Fatflow"].full_name
