"""A pushed device config must be self-contained: it may not make the switch read files
of its host through the preprocessor."""

from __future__ import annotations

import grpc
import pytest
from test_robust_harness import ServerThread, fatflow_build

from softswitch.runtime.device_config import DeviceConfigError, check_self_contained

MAIN = "V1Switch(P(), VC(), I(), E(), CC(), D()) main;\n"


@pytest.mark.parametrize("source", [
    "#include <core.p4>\n#include <v1model.p4>\n" + MAIN,
    "  #  include   <v1model.p4>\n",
    '// #include "/etc/passwd" in a comment\n',
    '/* #include "/etc/passwd" */\n',
    '# 1 "/work/p4src/fatflow_v1model.p4"\n# 12 "x.p4" 2\n',  # line markers of a flattened file
])
def test_self_contained_sources_pass(source: str) -> None:
    check_self_contained(source)


@pytest.mark.parametrize("source", [
    '#include "/etc/passwd"\n',
    "#include </etc/passwd>\n",
    '#include "include/defines.p4"\n',
    "#define F \"/etc/hostname\"\n#include F\n",
    '# /* sneaky */ include "/etc/passwd"\n',
    '#\\\ninclude "/etc/passwd"\n',
    '#include_next <v1model.p4>\n',
    '#import "/etc/passwd"\n',
    '#if __has_include("/etc/shadow")\n#endif\n',
])
def test_includes_that_read_host_files_are_refused(source: str) -> None:
    with pytest.raises(DeviceConfigError, match="self-contained"):
        check_self_contained(source)


def test_the_server_refuses_such_a_push_and_keeps_the_pipeline() -> None:
    config, info = fatflow_build()
    s = ServerThread()
    try:
        s.set_pipeline(config, info, cookie=7)
        with pytest.raises(grpc.RpcError) as exc:
            s.set_pipeline(b'#include "/etc/hostname"\n' + config, None, cookie=8)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "line 1" in (exc.value.details() or "") and "/etc/hostname" in (exc.value.details() or "")
        assert s.cookie() == 7
    finally:
        s.close()
