"""Exceptions that the CLI turns into one-line messages and exit codes."""


class GenEvalError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class UserError(GenEvalError):
    """Bad input. The message says what is wrong and how to fix it (exit 2)."""


class Terminated(KeyboardInterrupt):
    """Raised by the CLI's SIGTERM handler: unwinds like KeyboardInterrupt (temporary files are removed)."""


class GateFailed(GenEvalError):
    """A quality gate (--min-score, --max-fid, --max-mse) was missed (exit 1)."""

    exit_code = 1


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
