"""Control-plane names of P4 objects, formed the way p4c forms them for P4Info.

One function, used by the interpreter (to key tables, actions and extern instances)
and by the P4Info generator, so that the two can never disagree.

Rules (p4c): an object declared in a control or parser gets the path of instance
names down to it joined with dots, the top-level blocks of the main package being
named after their type (``MyIngress.ipv4_lpm``). ``@name("x")`` replaces the object's
own segment; ``@name(".x")`` is absolute (the path is dropped). Top-level objects
(actions such as ``NoAction``) are just their name.
"""

from __future__ import annotations

from collections.abc import Sequence

from softswitch.ir import Annotation

__all__ = ["control_plane_name"]


def control_plane_name(path: Sequence[str], local: str, annotations: Sequence[Annotation] = ()) -> str:
    """Name of object ``local`` declared inside the instance path ``path``.

    >>> control_plane_name(("MyIngress",), "ipv4_lpm")
    'MyIngress.ipv4_lpm'
    >>> control_plane_name(("MyIngress",), "t", [Annotation("name", '"fwd"', ("fwd",))])
    'MyIngress.fwd'
    >>> control_plane_name(("MyIngress",), "t", [Annotation("name", '".fwd"', (".fwd",))])
    'fwd'
    """
    for a in annotations:
        if a.name == "name" and a.args and isinstance(a.args[0], str):
            given = a.args[0]
            if given.startswith("."):
                return given[1:]
            local = given
            break
    return ".".join([*path, local]) if path else local
