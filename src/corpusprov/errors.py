"""Typed errors: every failure a user can cause, carrying the facts its message is built from."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CorpusprovError",
    "DataError",
    "DvcFileError",
    "InputError",
    "OutputError",
    "ParamsError",
    "UsageError",
    "escaped",
]


def escaped(text: str) -> str:
    """``text`` with newlines and other control characters written as escapes, so it stays one line.

    File names, stage names and keys come from users and files; a newline in one must not
    split a message, and a terminal escape in one must not reach the terminal.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class CorpusprovError(Exception):
    """Base of every error corpusprov raises on purpose; the CLI turns it into one line."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.fix = fix

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields do not survive the default exception pickling, and errors
        # raised in worker processes travel back to the parent pickled.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))

    def location(self) -> str:
        """``path:line:column`` with whatever parts are known, or an empty string."""
        if self.path is None:
            return ""
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.fix:
            text = f"{text}; {self.fix}"
        return escaped(text)


class DataError(CorpusprovError):
    """An input row or file is not what the contract says (bad JSON, missing key, ...)."""

    exit_code = 1


class InputError(CorpusprovError):
    """An input cannot be opened as a shard: missing, a folder with no JSONL, not a file."""

    exit_code = 2


class ParamsError(CorpusprovError):
    """``params.yaml`` is malformed or says something inconsistent."""

    exit_code = 2


class UsageError(CorpusprovError):
    """The command line asks for something that cannot be done (output inside the inputs...)."""

    exit_code = 2


class DvcFileError(CorpusprovError):
    """``dvc.yaml``, ``dvc.lock`` or a ``.dvc`` file is malformed, too large, or names a path outside."""

    exit_code = 2


class OutputError(CorpusprovError):
    """Writing an output failed (disk full, permission, file limit); nothing was left behind."""

    exit_code = 1


def _rebuild(cls: type[CorpusprovError], message: str, state: dict[str, Any]) -> CorpusprovError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
