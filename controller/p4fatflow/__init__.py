"""Fat-flow controller logic: configuration model and the reference flow-key function (pure, no I/O)."""

from __future__ import annotations

from p4fatflow.config import (
    VMI,
    VN,
    ConfigError,
    FatFlowRule,
    IgnoreAddress,
    PrefixAggr,
    Topology,
)
from p4fatflow.key import (
    CompiledRules,
    Direction,
    ExcludeList,
    FlowKey,
    PacketFields,
    RuleMatch,
    compile_rules,
    flow_key,
    l4_ports,
    select_rule,
)

__all__ = [
    "CompiledRules",
    "ConfigError",
    "Direction",
    "ExcludeList",
    "FatFlowRule",
    "FlowKey",
    "IgnoreAddress",
    "PacketFields",
    "PrefixAggr",
    "RuleMatch",
    "Topology",
    "VMI",
    "VN",
    "compile_rules",
    "flow_key",
    "l4_ports",
    "select_rule",
]
