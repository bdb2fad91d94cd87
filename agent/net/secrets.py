"""Secrets kept in files (broker passwords): read one way by the agent and the collector alike."""

from __future__ import annotations


def read_secret_file(path: str) -> str:
    """The file's first line without its line ending: a trailing newline or a comment line
    below it is never part of the secret. Raises OSError; the caller says which setting."""
    with open(path, encoding="utf-8") as f:
        return f.readline().rstrip("\r\n")
