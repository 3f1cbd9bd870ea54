"""Exceptions that the CLI turns into one-line messages and exit codes, and how messages name parameters.

The library never names a command-line flag: a message names a parameter with :func:`param`, and the
text is rendered when it is read. From Python a parameter reads as its keyword (``batch_size=0``);
while a CLI command runs (:func:`flag_style`) it reads as that command's option (``--batch-size 0``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_PARAM = re.compile("\x02([A-Za-z_][A-Za-z0-9_]*)(?:\x1f([^\x1f\x03]*)\x1f([^\x1f\x03]*))?\x03")
_NO_VALUE = object()
# name, negative (a False flag) -> the option's text; None: render parameters as Python keywords
_flag_of: ContextVar[Callable[[str, bool], str] | None] = ContextVar("gen_eval_flag_of", default=None)


def param(name: str, value: object = _NO_VALUE, shown: str | None = None) -> str:
    """A parameter named inside a message (``name`` is the Python keyword).

    With a ``value`` it reads ``name=value`` in Python and ``--flag shown`` on the command line
    (``shown`` defaults to ``str(value)``; a bool is a flag: ``True`` reads ``--force``, ``False`` the
    negative form such as ``--no-verify``).
    """
    if value is _NO_VALUE:
        return f"\x02{name}\x03"
    if isinstance(value, bool):
        shown = "" if value else "\x00"
    elif shown is None:
        shown = str(value)
    return f"\x02{name}\x1f{_clean(shown)}\x1f{_clean(repr(value))}\x03"


def _clean(text: str) -> str:
    return text.replace("\x1f", " ").replace("\x03", " ")


def render(text: object) -> str:
    """``text`` with its parameters named for whoever reads it (see :func:`flag_style`)."""
    flag_of = _flag_of.get()

    def name_it(match: re.Match) -> str:
        name, shown, python = match.groups()
        if flag_of is None:
            return name if python is None else f"{name}={python}"
        if shown is None:
            return flag_of(name, False)
        if shown in ("", "\x00"):
            return flag_of(name, shown == "\x00")
        return f"{flag_of(name, False)} {shown}"

    return _PARAM.sub(name_it, str(text))


@contextmanager
def flag_style(flag_of: Callable[[str, bool], str]) -> Iterator[None]:
    """Within the block, messages name parameters by ``flag_of(name, negative)`` (the CLI's options)."""
    token = _flag_of.set(flag_of)
    try:
        yield
    finally:
        _flag_of.reset(token)


class GenEvalError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with. ``str()`` renders :func:`param` names."""

    exit_code = 2
    label = "error"  # what the CLI's one line starts with

    def __str__(self) -> str:
        return render(super().__str__())


class UserError(GenEvalError):
    """Bad input. The message says what is wrong and how to fix it (exit 2)."""


class Terminated(KeyboardInterrupt):
    """Raised by the CLI's SIGTERM handler: unwinds like KeyboardInterrupt (temporary files are removed)."""


class GateFailed(GenEvalError):
    """A check that a model or a run must pass failed, e.g. export parity (exit 1)."""

    exit_code = 1


class GateMissed(GateFailed):
    """A quality gate (a minimum score, a maximum distance) was missed: nothing went wrong, the model fell
    short. The message is the verdict itself ("gate missed: fid 31.2 ... is above ..."), exit 1."""

    label = ""


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object) -> str:
    """``text`` safe for a terminal line: control characters (escape codes, newlines, C1 controls,
    bidirectional overrides) become visible escapes such as ``\\x1b`` or ``\\n``.

    Every untrusted string (model metadata, op names, file names, paths) passes through this before it
    is printed: by the CLI's error printer and by ``gen-eval info``.
    """
    out = []
    for char in str(text):
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in (0x200E, 0x200F, 0x2028, 0x2029) or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)
