"""Identifiers that become Dagster partition keys and file names."""

from __future__ import annotations

import re

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class InvalidIdError(ValueError):
    """An id that is not a slug (it would break partition keys or escape a directory)."""


def validate_slug(value: str, kind: str = "id") -> str:
    """Return ``value`` if it is a slug: lower-case letters, digits, '.', '_' and '-', 1..64 chars.

    Rejects path traversal ('..', '/'), partition-key separators ('|', ',', '[', ']') and spaces.
    """
    if not isinstance(value, str) or not SLUG_PATTERN.match(value) or ".." in value:
        raise InvalidIdError(
            f"invalid {kind} {value!r}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit (no '/', '|', ',', '[', ']', spaces or '..')"
        )
    return value
