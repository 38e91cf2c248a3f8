"""A content-addressed JSON cache: generations and judge calls are stored under the hash of
everything that determines their output, so re-running unchanged inputs costs a file read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag_pipeline import atomic
from rag_pipeline.hashing import content_hash


class ContentCache:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @staticmethod
    def key_for(identity: Any) -> str:
        """The cache key of an identity (any JSON-serialisable value)."""
        return content_hash(identity, length=32)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # a damaged entry is a miss; the next put replaces it

    def put(self, key: str, value: dict) -> None:
        atomic.write_json(self._path(key), value)

    def __contains__(self, key: str) -> bool:
        return self._path(key).exists()

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json")) if self.directory.exists() else 0
