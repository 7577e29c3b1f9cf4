"""finsy's Switch (what our controller uses) against the server with the real Device."""

from __future__ import annotations

from pathlib import Path

import finsy as fy

from softswitch.device import Device
from softswitch.p4info import build_p4info, p4info_to_text
from softswitch.runtime.server import P4RuntimeServer

PROG = Path(__file__).parents[1] / "programs" / "l3_forward.p4"


async def test_finsy_switch_pushes_pipeline_writes_reads(tmp_path: Path) -> None:
    info_path = tmp_path / "l3.p4info.txtpb"
    info_path.write_text(p4info_to_text(build_p4info(Device.compile(PROG.read_text(), str(PROG)).ir)))
    srv = P4RuntimeServer(Device(device_id=0, cpu_port=64))
    port = await srv.start("127.0.0.1:0")

    def entry() -> fy.P4TableEntry:
        return fy.P4TableEntry("ipv4_lpm", match=fy.P4TableMatch(dstAddr="10.0.1.0/24"),
                               action=fy.P4TableAction("ipv4_forward", dstAddr=0x0101, port=1))

    try:
        opts = fy.SwitchOptions(device_id=0, p4info=info_path, p4blob=PROG)
        async with fy.Switch("sw", f"127.0.0.1:{port}", opts) as sw:
            assert sw.is_primary
            await sw.write([+entry()])
            got = [e async for e in sw.read(fy.P4TableEntry("ipv4_lpm"))]
            assert len(got) == 1
            assert got[0].match["dstAddr"] == (0x0A000100, 24)  # type: ignore[index]
            assert got[0].action is not None and got[0].action.args == {"dstAddr": 0x0101, "port": 1}  # type: ignore[union-attr]
            try:
                await sw.write([+entry()])
                raise AssertionError("duplicate insert accepted")
            except fy.P4ClientError as e:
                assert e.code == fy.GRPCStatusCode.UNKNOWN
                assert e.details[0].canonical_code == fy.GRPCStatusCode.ALREADY_EXISTS
    finally:
        await srv.stop(0)
