"""The configuration file's structure: a YAML reader that keeps line numbers, and the JSON Schema.

settings.py builds the validated model; this module only answers "is it shaped right?" and says
where it is not. Every :class:`Problem` names the file, the path inside it
(``switches[0].vmis[2].rules[0].src_prefix_aggr.plen``), the YAML line when known, and what is
wrong; all problems found are reported together.

Decisions:

- YAML 1.1's base-60 numbers are turned off: an unquoted MAC such as ``02:00:00:00:01:01`` would
  otherwise silently become the integer 7384441. Integers are decimal, ``0x..`` or ``0b..``.
- Duplicate mapping keys are errors (PyYAML would silently keep the last one).
- Mapping keys are read as strings (``6: 300`` under ``lifetime`` is the key ``"6"``).
- A file over :data:`MAX_CONFIG_BYTES`, nested deeper than :data:`MAX_DEPTH`, or expanding
  (through aliases) to more than :data:`MAX_NODES` nodes is refused before any further work.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import yaml

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "PathT",
    "Problem",
    "ConfigFileError",
    "SCHEMA",
    "format_path",
    "did_you_mean",
    "read_yaml",
    "schema_problems",
]

MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 1_000_000

PathT = tuple[str | int, ...]


def format_path(path: PathT) -> str:
    """``("switches", 0, "vmis", 2)`` -> ``switches[0].vmis[2]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a configuration file."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigFileError(Exception):
    """A configuration file that cannot be used; ``problems`` lists everything found wrong."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---- YAML with line numbers -----------------------------------------------------------------------

_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0b[01_]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Loader(yaml.SafeLoader):
    """SafeLoader without base-60 numbers, with a nesting limit."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# Own copy of the resolver table (PyYAML's is a class attribute shared by every loader).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


class _TooBig(Exception):
    pass


class _Reader:
    """Turns a composed node tree into plain dicts/lists, recording each path's line."""

    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.lines: dict[PathT, int] = {}
        self.problems: list[Problem] = []
        self.nodes = 0

    def read(self, node: yaml.Node, path: PathT) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:  # aliases can make a small file expand enormously
            raise _TooBig(f"more than {MAX_NODES} values (through aliases?)")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                return self._bad_tag(node, path)
            return [self.read(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._problem(path, node, f"cannot read this value: {getattr(exc, 'problem', exc)}")
            return None

    def _mapping(self, node: yaml.MappingNode, path: PathT) -> Any:
        if node.tag != _MAP_TAG:
            return self._bad_tag(node, path)
        self.loader.flatten_mapping(node)  # "<<" merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(path, key_node, "a mapping key must be a plain scalar")
                continue
            key = str(self.loader.construct_object(key_node))
            sub = (*path, key)
            if key in out:
                self._problem(sub, key_node, f"key {key!r} is given twice")
                continue
            self.lines[sub] = key_node.start_mark.line + 1
            out[key] = self.read(value_node, sub)
        return out

    def _bad_tag(self, node: yaml.Node, path: PathT) -> None:
        self._problem(path, node, f"unsupported YAML tag {node.tag}")
        return None

    def _problem(self, path: PathT, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.source, format_path(path), message, node.start_mark.line + 1))


def read_yaml(text: str, source: str) -> tuple[Any, dict[PathT, int]]:
    """(data, {path: line}) of a YAML document; raises ConfigFileError."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigFileError([Problem(source, "", f"file is larger than {MAX_CONFIG_BYTES} bytes")])
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        reader = _Reader(loader, source)
        data = None if root is None else reader.read(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        raise ConfigFileError([Problem(source, "", f"YAML: {exc.problem or exc.context}", line)]) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError([Problem(source, "", f"YAML: {exc}")]) from None
    except _TooBig as exc:
        raise ConfigFileError([Problem(source, "", str(exc))]) from None
    finally:
        loader.dispose()
    if reader.problems:
        raise ConfigFileError(reader.problems)
    return data, reader.lines


# ---- the JSON Schema ------------------------------------------------------------------------------


def _obj(required: Sequence[str] = (), **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


def _int(low: int, high: int, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["integer", "null"] if nullable else "integer", "minimum": low, "maximum": high}


def _str(hint: str = "", pattern: str = "", nullable: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ["string", "null"] if nullable else "string", "minLength": 1}
    if pattern:
        out |= {"pattern": pattern, "x-hint": hint}
    return out


_PORT = _int(0, 510)
_MAC = _str("a MAC address like '02:00:00:00:00:aa'", r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
_HOSTPORT = _str("host:port (e.g. 127.0.0.1:50051 or [::1]:50051)", r"^(\[[^\]]+\]|[^:\[\]\s]+):[0-9]+$")
_BOOL = {"type": "boolean"}
_MISS = {"enum": ["forward", "drop", "hold"]}
_AGGR = {"type": ["object", "null"], "properties": {"subnet": _str(), "plen": _int(0, 128)},
         "required": ["subnet", "plen"], "additionalProperties": False}
_RULE = _obj(
    ["protocol"],
    protocol={"type": ["string", "integer"]},
    port=_int(0, 0xFFFF),
    ignore_address={"enum": ["none", "src", "dst"]},
    src_prefix_aggr=_AGGR,
    dst_prefix_aggr=_AGGR,
)
_LIST = {"type": "array"}
_RULES = _LIST | {"items": _RULE}
_STRINGS = _LIST | {"items": _str()}
_LIFETIME_KEY = r"^(default|tcp|udp|sctp|icmp|icmpv6|[0-9]{1,3})$"

_FLOWTABLE = _obj(
    max_flows=_int(1, 1 << 32),
    lifetime={"type": "object", "additionalProperties": _int(0, 365 * 86400),
              "propertyNames": {"pattern": _LIFETIME_KEY,
                                "x-hint": "default, tcp, udp, sctp, icmp, icmpv6 or a protocol number"}},
    analyzer_port=_int(0, 510, nullable=True),
    mirror_new_flows=_BOOL,
    digest=_obj(max_list_size=_int(1, 65535), max_timeout_ms=_int(0, 60_000), ack_timeout_ms=_int(1, 600_000),
                backlog=_int(1, 10_000_000)),
    hold=_obj(per_flow=_int(0, 1024), total=_int(0, 1 << 20)),
    policy={"enum": ["default", "firewall", "loadbalancer"]},
    policy_options={"type": "object"},
)
_FLOWTABLE["type"] = ["object", "null"]

_TLS_API = _obj(["cert", "key"], cert=_str(), key=_str(), ca=_str(nullable=True))
_TLS_API["type"] = ["object", "null"]
_TLS_SWITCH = _obj(ca=_str(nullable=True), cert=_str(nullable=True), key=_str(nullable=True),
                   server_name=_str(nullable=True))
_TLS_SWITCH["type"] = ["object", "null"]

_PORT_COMMON: dict[str, Any] = {
    "miss_policy": _MISS,
    "flowtable": _BOOL,
    "mirror_new_flows": {"type": ["boolean", "null"]},
    "egress_port": _PORT,
}

SCHEMA: dict[str, Any] = _obj(
    ["version", "switches"],
    version={"const": 1},
    api=_obj(listen=_HOSTPORT, token_file=_str(nullable=True), tls=_TLS_API,
             metrics_listen=_HOSTPORT | {"type": ["string", "null"]}) | {"type": ["object", "null"]},
    flowtable=_FLOWTABLE,
    # flow records out to collectors (p4fatflow.export, docs/export.md)
    export=_obj(ipfix=_obj(["collector"], collector=_HOSTPORT, observation_domain=_int(0, 0xFFFFFFFF),
                           template_refresh_s=_int(1, 86400), periodic_s=_int(1, 86400, nullable=True))
                | {"type": ["object", "null"]}) | {"type": ["object", "null"]},
    vns=_LIST | {"items": _obj(["name", "vrf"], name=_str(), vrf=_int(0, 0xFFFF), subnets=_STRINGS,
                               rules=_RULES)},
    switches=_LIST | {"items": _obj(
        ["name", "address", "device_id", "p4info", "device_config", "router_mac"],
        name=_str(),
        address=_HOSTPORT,
        device_id=_int(0, (1 << 64) - 1),
        election_id=_int(1, (1 << 64) - 1),
        p4info=_str(),
        device_config=_str(),
        tls=_TLS_SWITCH,
        cpu_port=_PORT,
        router_mac=_MAC,
        flowtable=_FLOWTABLE,
        vmis=_LIST | {"items": _obj(
            ["name", "port", "vn", "mac"], name=_str(), port=_PORT, vn=_str(), id=_int(1, 0xFFFF, nullable=True),
            mac=_MAC, addresses=_STRINGS, rules=_RULES, exclude=_STRINGS, **_PORT_COMMON)},
        fabric_ports=_LIST | {"items": _obj(["port", "vn"], port=_PORT, vn=_str(), **_PORT_COMMON)},
        routes=_LIST | {"items": _obj(["vn", "prefix", "port", "mac"], vn=_str(), prefix=_str(), port=_PORT,
                                      mac=_MAC)},
    )},
)

_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_TYPE_NAMES = {"integer": "an integer", "string": "a string", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "mapping",
            list: "list"}.get(type(value), type(value).__name__)


def _messages(error: jsonschema.ValidationError) -> Iterator[tuple[PathT, str]]:
    """(path, message) for one schema error, in the operator's words."""
    path: PathT = tuple(error.absolute_path)
    # jsonschema's attributes are loosely typed; this schema's are plain dicts, lists and strs.
    schema: Any = error.schema
    value: Any = error.instance
    rule: Any = error.validator
    expected: Any = error.validator_value
    if rule == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        for key in value:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f" (allowed: {', '.join(allowed)})"
                yield (*path, key), f"unknown key {key!r}{hint}"
    elif rule == "required" and isinstance(value, dict):
        for key in expected:
            if key not in value:
                yield path, f"missing required key {key!r}"
    elif rule == "type":
        types = expected if isinstance(expected, list) else [expected]
        want = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in types)
        yield path, f"expected {want}, got {_kind(value)} {value!r}"
    elif rule in ("minimum", "maximum"):
        yield path, f"{value} is out of range {schema.get('minimum')}-{schema.get('maximum')}"
    elif rule == "enum":
        choices = [str(c) for c in expected]
        yield path, f"{value!r} is not one of {', '.join(choices)}{did_you_mean(str(value), choices)}"
    elif rule == "const":
        yield path, f"unsupported {path[-1] if path else 'value'} {value!r} (this controller reads {expected!r})"
    elif rule == "pattern":
        yield path, f"{value!r} is not {schema.get('x-hint', 'valid')}"
    elif rule == "minLength":
        yield path, "must not be empty"
    else:
        yield path, error.message


def schema_problems(data: Any, lines: Mapping[PathT, int], source: str) -> list[Problem]:
    """Everything structurally wrong with ``data``, in file order."""
    out: dict[tuple[str, str], Problem] = {}
    for error in _VALIDATOR.iter_errors(data):
        for path, message in _messages(error):
            line = next((lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in lines), None)
            problem = Problem(source, format_path(path), message, line)
            out.setdefault((problem.path, problem.message), problem)
    return sorted(out.values(), key=lambda p: (p.line or 0, p.path))
