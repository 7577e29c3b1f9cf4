"""API errors: a gRPC status code and a message that names the field at fault."""

from __future__ import annotations

import grpc

__all__ = ["ApiError", "not_found", "invalid", "out_of_range"]


class ApiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, message)


def invalid(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def out_of_range(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.OUT_OF_RANGE, message)
