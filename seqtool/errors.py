"""Errors a user can act on. The CLI prints them as one line and exits 2 (never a traceback)."""

from __future__ import annotations


class SeqtoolError(Exception):
    """A user-facing error: bad input, bad options, a wrong checkpoint."""

    exit_code = 2


class DataError(SeqtoolError):
    """Malformed or unreadable input data; the message names file, line and column."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message)
        self.path, self.line, self.column = path, line, column


class CheckpointError(SeqtoolError):
    """A missing, corrupt, foreign or wrong-task checkpoint."""


class ConfigError(SeqtoolError):
    """An invalid option or configuration value."""
