"""Fat-flow controller logic: configuration model and the reference flow-key function (pure, no I/O)."""

from __future__ import annotations

from controller.fatflow.config import (
    VMI,
    VN,
    ConfigError,
    FatFlowRule,
    IgnoreAddress,
    PrefixAggr,
    Topology,
)

__all__ = [
    "ConfigError",
    "FatFlowRule",
    "IgnoreAddress",
    "PrefixAggr",
    "Topology",
    "VMI",
    "VN",
]
