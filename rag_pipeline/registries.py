"""Registry files (``data/models.yaml``, ``data/papers.yaml``): a YAML mapping holding a list of entries.

Every entry is validated on its own into a :class:`~rag_pipeline.config.Section` model. An invalid
entry is skipped and reported (an :class:`EntryError` naming the file, the entry and the field) while
the others load; a problem with the file itself (missing, not YAML, no list, a duplicate name) raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from rag_pipeline.config import ConfigError, read_yaml

Entry = TypeVar("Entry")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntryError:
    """One skipped registry entry; ``message`` names the file, the entry and the field."""

    path: Path
    index: int
    key: str | None  # the entry's name / id as written, when it has one
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RegistryReport(Generic[Entry]):
    """A registry file as read: its valid entries in file order and the errors of the skipped ones."""

    path: Path
    entries: tuple[Entry, ...]
    errors: tuple[EntryError, ...] = ()

    def error_for(self, key: str) -> EntryError | None:
        """The error of the skipped entry named ``key``, if there is one."""
        return next((error for error in self.errors if error.key == key), None)

    def log_errors(self, logger: logging.Logger = log) -> None:
        for error in self.errors:
            logger.warning("skipped registry entry: %s", error)


def read_registry(
    path: str | os.PathLike,
    list_key: str,
    parse: Callable[[Any, str], Entry],
    *,
    key_field: str,
    kind: str,
    error: type[ConfigError],
    what: str,
) -> RegistryReport[Entry]:
    """Read ``{list_key: [entry, ...]}``: ``parse(entry, where)`` validates one entry (raising a
    ConfigError, which skips it); the parsed entries' ``key_field`` values must be unique."""
    path = Path(path)
    loaded = read_yaml(path, error, what) or {}
    if not isinstance(loaded, dict) or not isinstance(loaded.get(list_key) or [], list):
        raise error(f"{path}: expected a mapping with a '{list_key}' list")
    entries: list[Entry] = []
    errors: list[EntryError] = []
    seen: set[str] = set()
    for index, raw in enumerate(loaded.get(list_key) or []):
        try:
            entry = parse(raw, f"{path} entry {index}")
        except ConfigError as exc:
            key = raw.get(key_field) if isinstance(raw, dict) else None
            errors.append(EntryError(path, index, None if key is None else str(key), str(exc)))
            continue
        key = getattr(entry, key_field)
        if key in seen:
            raise error(f"{path}: duplicate {kind} {key!r}")
        seen.add(key)
        entries.append(entry)
    return RegistryReport(path, tuple(entries), tuple(errors))


def entry_where(where: str, kind: str, data: Any, key_field: str) -> str:
    """``where`` plus the entry's name as written (``data/models.yaml entry 3: model 'x'``), if any."""
    key = data.get(key_field) if isinstance(data, dict) else None
    return where if key is None else f"{where}: {kind} {str(key)!r}"
