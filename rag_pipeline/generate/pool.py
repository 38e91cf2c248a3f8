"""The model pool: at most one generation model loaded in this process.

A run that generates several partitions of one model loads it once; switching to another model
frees the previous one first, so two 8B models are never resident together.
"""

from __future__ import annotations

from rag_pipeline.generate.backends import Backend, load_backend
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.settings import StatePaths


class ModelPool:
    """Keeps the last used model loaded; ``loads`` counts loads (one per model per run)."""

    def __init__(self):
        self._key = None
        self._backend: Backend | None = None
        self.loads = 0

    def get(self, spec: ModelSpec, state: StatePaths | None = None) -> Backend:
        key = (spec.name, str(spec.identity()))
        if self._key != key:
            self.release()
            self._backend = load_backend(spec, state)
            self._key = key
            self.loads += 1
        return self._backend

    def release(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._key, self._backend = None, None


# One pool per process: the in-process executor runs every step of a run here.
MODEL_POOL = ModelPool()
