"""Exceptions that the CLI turns into one-line messages and exit codes."""


class GenEvalError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class UserError(GenEvalError):
    """Bad input. The message says what is wrong and how to fix it (exit 2)."""


class GateFailed(GenEvalError):
    """A quality gate (--min-score, --max-fid, --max-mse) was missed (exit 1)."""

    exit_code = 1
