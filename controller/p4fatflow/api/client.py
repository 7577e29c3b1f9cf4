"""Client library of the fatflowd API, async (:class:`AsyncFatflowClient`) and sync (:class:`FatflowClient`).

Both take the same arguments and have the same methods; results are the protobuf messages of
``fatflow.proto`` (``p4fatflow.api.pb.pb``), and :func:`to_dict` turns any of them into plain data.
A failed call raises :class:`FatflowError` (``.code`` is the grpc.StatusCode, ``.details`` the
server's message), whose subclasses name the common cases::

    async with AsyncFatflowClient("127.0.0.1:50051", token="...") as ff:
        r = await ff.update_flow(packet=("10.0.0.3", "8.8.8.8", 17, 1111, 53), vmi="vm1", lifetime=30,
                                 offloaded=True)
        async for batch in ff.watch_flows(expired=True):
            ...
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from p4fatflow.api.pb import pb, pb_grpc

__all__ = [
    "DEFAULT_ADDRESS",
    "FatflowError",
    "NotFound",
    "InvalidArgument",
    "Unauthenticated",
    "Unavailable",
    "AsyncFatflowClient",
    "FatflowClient",
    "update_request",
    "selector",
    "to_dict",
    "VERDICTS",
    "SORTS",
]

DEFAULT_ADDRESS = "127.0.0.1:50051"
VERDICTS = {"forward": pb.VERDICT_FORWARD, "drop": pb.VERDICT_DROP}
SORTS = {"key": pb.SORT_KEY, "packets": pb.SORT_PACKETS, "bytes": pb.SORT_BYTES, "age": pb.SORT_AGE}

Packet = tuple[str, str, int, int, int]  # src, dst, protocol, sport, dport


class FatflowError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class NotFound(FatflowError):
    pass


class InvalidArgument(FatflowError):
    pass


class Unauthenticated(FatflowError):
    pass


class Unavailable(FatflowError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[FatflowError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound, grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument, grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable, grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def _error(exc: grpc.RpcError) -> FatflowError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else "") or str(code)
    return _BY_CODE.get(code, FatflowError)(code, details)


def to_dict(msg: Any) -> dict[str, Any]:
    """A message as plain data: field names as in the .proto, every field present, 64-bit integers as
    numbers (not JSON strings), bytes as hex."""
    d: dict[str, Any] = json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                                  always_print_fields_with_no_presence=True)
    return _fix(d, msg.DESCRIPTOR)


_INT64 = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_FIXED64,
          FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}


def _fix(d: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    for f in descriptor.fields:
        if f.name not in d:
            continue
        v = d[f.name]
        repeated = isinstance(v, list)
        items = v if repeated else [v]
        if f.message_type is not None:
            for x in items:
                _fix(x, f.message_type)
            continue
        if f.type in _INT64:
            items = [int(x) for x in items]
        elif f.type == FieldDescriptor.TYPE_BYTES:
            items = [base64.b64decode(x).hex() for x in items]
        d[f.name] = items if repeated else items[0]
    return d


def selector(*, switch: str = "", vmi: str = "", vrf: int | None = None, packet: Packet | None = None,
             key: dict[str, Any] | None = None) -> Any:
    sel = pb.FlowSelector(switch=switch, vmi=vmi)
    if vrf is not None:
        sel.vrf = vrf
    if packet is not None:
        src, dst, proto, sport, dport = packet
        sel.packet.CopyFrom(pb.Packet(src=src, dst=dst, protocol=proto, sport=sport, dport=dport))
    elif key is not None:
        sel.key.CopyFrom(pb.FlowKey(**key))
    return sel


def update_request(*, switch: str = "", vmi: str = "", vrf: int | None = None, packet: Packet | None = None,
                   key: dict[str, Any] | None = None, lifetime: int | None = None, offloaded: bool | None = None,
                   mirror: bool | None = None, verdict: str | None = None, egress_port: int | None = None,
                   info: bytes | None = None, preinstall: bool = False, pending_ms: int = 0, tag: int = 0) -> Any:
    """An UpdateFlowRequest; None leaves a field unchanged."""
    req = pb.UpdateFlowRequest(flow=selector(switch=switch, vmi=vmi, vrf=vrf, packet=packet, key=key),
                               preinstall=preinstall, pending_ms=pending_ms, tag=tag)
    for name, value in (("lifetime", lifetime), ("offloaded", offloaded), ("mirror", mirror),
                        ("egress_port", egress_port), ("info", info)):
        if value is not None:
            setattr(req, name, value)
    if verdict is not None:
        req.verdict = VERDICTS[verdict]
    return req


def _credentials(token: str | None, ca: str | Path | None, cert: str | Path | None,
                 key: str | Path | None) -> grpc.ChannelCredentials | None:
    if ca is None and cert is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca else None,
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None)


class _Base:
    def __init__(self, address: str = DEFAULT_ADDRESS, *, token: str | None = None, token_file: str | Path | None = None,
                 ca: str | Path | None = None, cert: str | Path | None = None, key: str | Path | None = None,
                 server_name: str | None = None, timeout: float | None = 30.0) -> None:
        if token is None and token_file is not None:
            token = Path(token_file).read_text().strip()
        self.address = address
        self.timeout = timeout
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.creds = _credentials(token, ca, cert, key)
        self.options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 64 << 20)]
        if server_name:
            self.options.append(("grpc.ssl_target_name_override", server_name))


class AsyncFatflowClient(_Base):
    """grpc.aio client; use ``async with`` or ``await close()``."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if self.creds is not None:
            self.channel = grpc.aio.secure_channel(self.address, self.creds, options=self.options)
        else:
            self.channel = grpc.aio.insecure_channel(self.address, options=self.options)
        self.stub = pb_grpc.FatflowStub(self.channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> AsyncFatflowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return await getattr(self.stub, method)(request, metadata=self.metadata,
                                                    timeout=timeout if timeout is not None else self.timeout)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    async def update_flow(self, **kw: Any) -> Any:
        return await self.call("UpdateFlow", update_request(**kw))

    async def update_flows(self, requests: Sequence[Any], brief: bool = False) -> Any:
        return await self.call("UpdateFlows", pb.UpdateFlowsRequest(updates=requests, brief=brief))

    async def get_flow(self, **kw: Any) -> Any:
        return await self.call("GetFlow", selector(**kw))

    async def delete_flow(self, **kw: Any) -> Any:
        return await self.call("DeleteFlow", selector(**kw))

    async def list_flows(self, **kw: Any) -> Any:
        return await self.call("ListFlows", list_request(**kw))

    async def watch_flows(self, **kw: Any) -> AsyncIterator[Any]:
        call = self.stub.WatchFlows(watch_request(**kw), metadata=self.metadata)
        try:
            async for batch in call:
                yield batch
        except grpc.RpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()

    async def configure_flowtable(self, **kw: Any) -> Any:
        return await self.call("ConfigureFlowtable", configure_request(**kw))

    async def get_config(self) -> Any:
        return await self.call("GetConfig", pb.GetConfigRequest())

    async def validate_config(self, yaml_text: str, source: str = "") -> Any:
        return await self.call("ValidateConfig", pb.ConfigText(yaml=yaml_text, source=source))

    async def apply_config(self, yaml_text: str, source: str = "") -> Any:
        return await self.call("ApplyConfig", pb.ConfigText(yaml=yaml_text, source=source))

    async def list_ports(self, switch: str = "") -> Any:
        return await self.call("ListPorts", pb.ListPortsRequest(switch=switch))

    async def get_stats(self, switch: str = "") -> Any:
        return await self.call("GetStats", pb.GetStatsRequest(switch=switch))


class FatflowClient(_Base):
    """Blocking client (grpc's synchronous channel); use ``with`` or ``close()``."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if self.creds is not None:
            self.channel = grpc.secure_channel(self.address, self.creds, options=self.options)
        else:
            self.channel = grpc.insecure_channel(self.address, options=self.options)
        self.stub = pb_grpc.FatflowStub(self.channel)  # type: ignore[no-untyped-call]

    def __enter__(self) -> FatflowClient:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self.stub, method)(request, metadata=self.metadata,
                                              timeout=timeout if timeout is not None else self.timeout)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    def update_flow(self, **kw: Any) -> Any:
        return self.call("UpdateFlow", update_request(**kw))

    def update_flows(self, requests: Sequence[Any], brief: bool = False) -> Any:
        return self.call("UpdateFlows", pb.UpdateFlowsRequest(updates=requests, brief=brief))

    def get_flow(self, **kw: Any) -> Any:
        return self.call("GetFlow", selector(**kw))

    def delete_flow(self, **kw: Any) -> Any:
        return self.call("DeleteFlow", selector(**kw))

    def list_flows(self, **kw: Any) -> Any:
        return self.call("ListFlows", list_request(**kw))

    def watch_flows(self, **kw: Any) -> Iterator[Any]:
        call = self.stub.WatchFlows(watch_request(**kw), metadata=self.metadata)
        try:
            yield from call
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                raise _error(exc) from None
        finally:
            call.cancel()

    def configure_flowtable(self, **kw: Any) -> Any:
        return self.call("ConfigureFlowtable", configure_request(**kw))

    def get_config(self) -> Any:
        return self.call("GetConfig", pb.GetConfigRequest())

    def validate_config(self, yaml_text: str, source: str = "") -> Any:
        return self.call("ValidateConfig", pb.ConfigText(yaml=yaml_text, source=source))

    def apply_config(self, yaml_text: str, source: str = "") -> Any:
        return self.call("ApplyConfig", pb.ConfigText(yaml=yaml_text, source=source))

    def list_ports(self, switch: str = "") -> Any:
        return self.call("ListPorts", pb.ListPortsRequest(switch=switch))

    def get_stats(self, switch: str = "") -> Any:
        return self.call("GetStats", pb.GetStatsRequest(switch=switch))


def list_request(*, switch: str = "", vmi: str = "", family: int = 0, fat_only: bool = False,
                 protocol: int | None = None, sort: str = "key", page_size: int = 0, page_token: str = "") -> Any:
    req = pb.ListFlowsRequest(switch=switch, vmi=vmi, family=family, fat_only=fat_only, sort=SORTS[sort],
                              page_size=page_size, page_token=page_token)
    if protocol is not None:
        req.protocol = protocol
    return req


def watch_request(*, switch: str = "", vmi: str = "", family: int = 0, created: bool = False, updated: bool = False,
                  expired: bool = False, queue: int = 0) -> Any:
    return pb.WatchFlowsRequest(switch=switch, vmi=vmi, family=family, created=created, updated=updated,
                                expired=expired, queue=queue)


def configure_request(*, switch: str = "", max_flows: int | None = None,
                      ports: Sequence[dict[str, Any]] = ()) -> Any:
    req = pb.ConfigureFlowtableRequest(switch=switch)
    if max_flows is not None:
        req.max_flows = max_flows
    for p in ports:
        pc = req.ports.add(port=p["port"])
        if p.get("enable") is not None:
            pc.enable = p["enable"]
        if p.get("egress_port") is not None:
            pc.egress_port = p["egress_port"]
    return req


def env_address() -> str:
    return os.environ.get("FATFLOW_API", DEFAULT_ADDRESS)
