"""Robustness: token-level mutants of real programs get p4c-style diagnostics, never a crash.

Every mutant of a seed program (fatflow, flattened, and the test programs) must either
compile with ``Device.compile`` (and commit) or raise ``CompileError`` whose lines are all
``file:line:col: error: ...``. An ``internal: ...`` diagnostic (an unexpected exception the
frontend caught) counts as a failure too, and so does a compile that takes longer than
``TIMEOUT`` seconds (a hang).

The committed test is small and derandomized. To hunt for bugs, run many more examples::

    FUZZ_EXAMPLES=5000 python -m pytest -q -p no:cacheprovider tests/softswitch/frontend/test_fuzz.py
"""

from __future__ import annotations

import functools
import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softswitch.device import CompileError, Device
from softswitch.frontend.preprocess import flatten

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 20  # seconds per compile; a real compile of fatflow takes well under 1 s
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
DIAG = re.compile(r"^[^:\n]+:\d+:\d+: error: \S")

# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<directive>^[ \t]*\#[^\n]*)                 # cpp directive or line marker
  | (?P<space>\s+|//[^\n]*|/\*.*?\*/)              # layout, kept as is
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<number>\d[\w]*)                            # 8w5, 0x1F, 1_000, 16s3
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<op>&&&|\|\+\||\|-\||\.\.|\+\+|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!<>=?:;,.(){}\[\]@])
  | (?P<other>.)
""", re.X | re.S | re.M)

Token = tuple[str, str]  # (kind, text)

OPERATORS = ["+", "-", "*", "/", "%", "&", "|", "^", "~", "!", "<<", ">>", "==", "!=", "<", ">",
             "<=", ">=", "&&", "||", "&&&", "..", "++", "|+|", "|-|", "?", ":", "=", ".", ",", ";",
             "(", ")", "{", "}", "[", "]", "@", "_"]
NUMBERS = ["0", "1", "2", "7", "8", "9", "16", "31", "32", "33", "48", "63", "64", "65", "128", "255",
           "256", "1024", "65536", "4294967296", "340282366920938463463374607431768211456",
           "99999999999999999999999999999999999999", "0x0", "0xFFFF", "0b101", "0o17", "0d12", "1_0",
           "0w0", "1w1", "1s1", "8w256", "8s128", "8s-1", "4w15", "32w0xFFFFFFFF", "16s0", "100000",
           "2147483648", "0x_", "1w", "3s0", "64w1", "128w5", "9w511", "1000000000"]
BINARY = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "==", "!=", "<", ">", "<=", ">=", "&&",
          "||", "++", "|+|", "|-|", "&&&", ".."]
KEYWORDS = ["bit", "int", "varbit", "bool", "error", "string", "const", "in", "out", "inout", "table",
            "action", "actions", "key", "apply", "return", "exit", "if", "else", "switch", "select",
            "transition", "state", "parser", "control", "header", "struct", "header_union", "enum",
            "typedef", "type", "extern", "package", "default", "entries", "true", "false", "this",
            "tuple", "match_kind", "void", "abstract", "value_set", "list", "priority", "_",
            "accept", "reject", "exact", "lpm", "ternary", "range", "optional", "NoAction", "main",
            "V1Switch", "packet_in", "packet_out", "standard_metadata_t", "register", "counter"]


def tokenize(src: str) -> list[Token]:
    return [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(src)]


def _significant(tokens: list[Token]) -> list[int]:
    return [i for i, (k, _) in enumerate(tokens) if k not in ("space", "directive")]


# ---------------------------------------------------------------- mutations

Draw = Callable[[int, int], int]  # draw(lo, hi): an int in [lo, hi]

#: The mutation kinds mutate_once chooses from (see there); a bug hunt may narrow them.
KINDS: list[int] = list(range(15))


def _pick(draw: Draw, items: list[str]) -> str:
    return items[draw(0, len(items) - 1)]


def mutate_once(tokens: list[Token], draw: Draw) -> list[Token]:
    """One token-level mutation, chosen with ``draw``."""
    sig = _significant(tokens)
    if not sig:
        return tokens
    kind = KINDS[draw(0, len(KINDS) - 1)]
    i = sig[draw(0, len(sig) - 1)]
    k, text = tokens[i]
    out = list(tokens)
    if kind == 0:  # delete a token
        del out[i]
    elif kind == 1:  # duplicate a token
        out.insert(i, (k, text))
    elif kind == 2:  # swap two adjacent significant tokens
        j = sig.index(i)
        if j + 1 < len(sig):
            a, b = sig[j], sig[j + 1]
            out[a], out[b] = out[b], out[a]
    elif kind == 3:  # replace an identifier by another identifier of the program
        idents = sorted({t for kk, t in tokens if kk == "ident"})
        targets = [x for x in sig if tokens[x][0] == "ident"]
        if idents and targets:
            i = targets[draw(0, len(targets) - 1)]
            out[i] = ("ident", _pick(draw, idents))
    elif kind == 4:  # replace a number by another width / value
        targets = [x for x in sig if tokens[x][0] == "number"]
        if targets:
            i = targets[draw(0, len(targets) - 1)]
            out[i] = ("number", _pick(draw, NUMBERS))
    elif kind == 5:  # change an operator
        targets = [x for x in sig if tokens[x][0] == "op"]
        if targets:
            i = targets[draw(0, len(targets) - 1)]
            out[i] = ("op", _pick(draw, OPERATORS))
    elif kind == 6:  # drop a semicolon or a brace
        targets = [x for x in sig if tokens[x][1] in (";", "{", "}", "(", ")", "<", ">")]
        if targets:
            del out[targets[draw(0, len(targets) - 1)]]
    elif kind == 7:  # truncate the file
        out = out[:i]
    elif kind == 8:  # replace a token by a keyword or a well-known name
        out[i] = ("ident", _pick(draw, KEYWORDS))
    elif kind == 9:  # insert a token copied from elsewhere in the program
        j = sig[draw(0, len(sig) - 1)]
        out.insert(i, (tokens[j][0], " " + tokens[j][1] + " "))
    elif kind == 10:  # replace a token by one copied from elsewhere
        j = sig[draw(0, len(sig) - 1)]
        out[i] = tokens[j]
    elif kind == 11:  # replace a binary operator by another one
        targets = [x for x in sig if tokens[x][1] in BINARY]
        if targets:
            out[targets[draw(0, len(targets) - 1)]] = ("op", _pick(draw, BINARY))
    else:  # delete, duplicate or copy elsewhere a whole statement or declaration
        spans = _statements(tokens, sig)
        if spans:
            a, b = spans[draw(0, len(spans) - 1)]
            stmt = tokens[a:b]
            if kind == 12:
                del out[a:b]
            elif kind == 13:
                out[b:b] = stmt
            else:
                c, _ = spans[draw(0, len(spans) - 1)]
                out[c:c] = stmt
    return out


def _statements(tokens: list[Token], sig: list[int]) -> list[tuple[int, int]]:
    """Token ranges [a, b) of the statements and declarations ending with ';'."""
    spans: list[tuple[int, int]] = []
    start = 0
    for x in sig:
        t = tokens[x][1]
        if t == ";":
            spans.append((start, x + 1))
        if t in (";", "{", "}"):
            start = x + 1
    return spans


def mutate(src: str, draw: Draw) -> str:
    tokens = tokenize(src)
    for _ in range(draw(1, 3)):
        tokens = mutate_once(tokens, draw)
    # keep tokens apart where a deletion made two of them touch
    parts: list[str] = []
    prev = ""
    for k, text in tokens:
        if prev and k not in ("space",) and (prev[-1:].isalnum() or prev[-1:] == "_") \
                and (text[:1].isalnum() or text[:1] == "_"):
            parts.append(" ")
        if k == "directive" and prev and not prev.endswith("\n"):
            parts.append("\n")
        parts.append(text)
        prev = text
    return "".join(parts)


# ---------------------------------------------------------------- seeds

@functools.cache
def seeds() -> tuple[str, ...]:
    fat = REPO / "p4src" / "fatflow_v1model.p4"
    out = [flatten(fat.read_text(), str(fat), real_path=str(fat))]
    for d in (REPO / "tests" / "softswitch" / "programs", REPO / "tests" / "softswitch" / "frontend" / "programs"):
        out.extend(p.read_text() for p in sorted(d.glob("*.p4")))
    return tuple(out)


# ---------------------------------------------------------------- the check

class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"compile took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def problem(src: str, timeout: int = TIMEOUT) -> str | None:
    """None when ``src`` compiles or is refused properly; otherwise what went wrong."""
    try:
        with time_limit(timeout):
            try:
                Device().commit(Device.compile(src, "fuzz.p4"))
            except CompileError as e:
                lines = str(e).split("\n")
                bad = [ln for ln in lines if not DIAG.match(ln)]
                if bad or not lines:
                    return f"malformed diagnostic: {bad[:3]!r}"
                internal = [ln for ln in lines if ": error: internal:" in ln]
                if internal:
                    return f"internal error: {internal[0]}"
    except Hang as e:
        return f"hang: {e}"
    except Exception as e:  # that is the point
        return f"crash: {type(e).__name__}: {e}"
    return None


@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM")
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_mutants_get_diagnostics(data: st.DataObject) -> None:
    progs = seeds()
    src = progs[data.draw(st.integers(0, len(progs) - 1), label="program")]
    mutant = mutate(src, lambda lo, hi: data.draw(st.integers(lo, hi)))
    msg = problem(mutant)
    assert msg is None, msg


def test_seeds_are_sound() -> None:
    """The unmutated seeds themselves compile or are refused properly."""
    for src in seeds():
        assert problem(src) is None
