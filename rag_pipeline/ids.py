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


def slugify(value: str, kind: str = "id") -> str:
    """Turn a free name (a file stem, an arXiv id) into a valid slug: lower-case, runs of other
    characters become '-', at most 64 characters. Raises InvalidIdError if nothing usable is left."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", str(value).strip().lower())
    slug = re.sub(r"[-_]*\.[-_.]*", ".", slug)  # no '..' and no '-.' pairs
    slug = re.sub(r"-{2,}", "-", slug).strip("-._")[:64].rstrip("-._")
    return validate_slug(slug, kind)
