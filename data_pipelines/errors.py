"""Errors raised for bad data: each names the file, episode and field involved."""

from __future__ import annotations


class DataError(ValueError):
    """Malformed or unreadable data. ``where`` names the file / episode / field."""

    def __init__(self, message: str, *, file: str | None = None, episode: int | str | None = None,
                 field: str | None = None):
        parts = []
        if file is not None:
            parts.append(f"file {file}")
        if episode is not None:
            parts.append(f"episode {episode}")
        if field is not None:
            parts.append(f"field {field!r}")
        self.file, self.episode, self.field = file, episode, field
        self.where = ", ".join(parts)
        super().__init__(f"{self.where}: {message}" if parts else message)


class MissingKeyError(DataError, KeyError):
    """A key the standardizer needs is absent; the message lists the keys that were found."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0] if self.args else ""


class UnknownDatasetError(DataError, KeyError):
    """A dataset name that is neither registered nor resolvable through a mapping."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""
