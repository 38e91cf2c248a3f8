"""``bge-m3``: FlagEmbedding's ``BGEM3FlagModel`` dense vectors (the notebook's embedder)."""

from __future__ import annotations

import numpy as np

from rag_pipeline.config import EmbedderConfig
from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.common import resolve_device
from rag_pipeline.index.embedders.base import Embedder, configured_prefixes, model_slug
from rag_pipeline.model_source import model_revision, package_version, resolve_model_source

BGE_M3_HUB_ID = "BAAI/bge-m3"


class BGEM3Embedder(Embedder):
    """Dense vectors of BAAI/bge-m3 through FlagEmbedding's BGEM3FlagModel (the notebook's embedder)."""

    MAX_LENGTH = 8192

    def __init__(self, config: EmbedderConfig):
        model = config.model or BGE_M3_HUB_ID
        source = resolve_model_source(model)
        self.device = resolve_device(config.device)
        try:
            # Imported on use: FlagEmbedding pulls in torch and transformers (seconds).
            from FlagEmbedding import BGEM3FlagModel

            # One explicit device: without it FlagEmbedding starts a process pool over all GPUs.
            self._model = BGEM3FlagModel(
                source,
                normalize_embeddings=True,
                use_fp16=self.device.startswith("cuda"),
                devices=self.device,
                batch_size=config.batch_size,
            )
        except OSError as exc:
            raise ModelUnavailableError(model, f"FlagEmbedding could not load it: {exc}") from exc
        self.config = config
        self.model = model
        self.source = source
        self.name = f"bge-m3-{model_slug(model)}"
        self.query_prefix, self.document_prefix = configured_prefixes(config, model)
        self.dim = int(np.asarray(self._encode(["dimension probe"], False)).shape[-1])
        self._revision: str | None = None

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        prefix = self.query_prefix if is_query else self.document_prefix
        output = self._model.encode(
            [prefix + text for text in texts],
            # texts is already one of our batches; a larger batch size also keeps FlagEmbedding's
            # per-call progress bars off (they show when the count reaches the batch size)
            batch_size=len(texts) + 1,
            max_length=self.MAX_LENGTH,
            return_dense=True,
            return_sparse=False,
            return_colbert_vecs=False,
        )
        return np.asarray(output["dense_vecs"], dtype=np.float32).reshape(len(texts), -1)

    def _model_signature(self) -> dict:
        if self._revision is None:
            self._revision = model_revision(self.source)
        return {
            "model": self.model,
            "revision": self._revision,
            "vectors": "dense",
            "max_length": self.MAX_LENGTH,
            "fp16": self.device.startswith("cuda"),
            "libraries": {
                "FlagEmbedding": package_version("FlagEmbedding"),
                "transformers": package_version("transformers"),
                "torch": package_version("torch"),
            },
        }
