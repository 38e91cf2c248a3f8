"""The model registry (``data/models.yaml``): which LLMs (or stand-ins) produce summaries and answers.

Each entry validates into a frozen :class:`ModelSpec` (a :class:`~rag_pipeline.config.Section`); an
invalid entry is skipped and reported (:func:`read_models`), the others load. Everything that changes
a model's output is part of :meth:`ModelSpec.identity`, which the generation cache keys on; settings
that only change speed (``batch_size``, HTTP timeout, retries) are not.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from rag_pipeline.config import ConfigError, Section
from rag_pipeline.hashing import canonical_json
from rag_pipeline.ids import InvalidIdError, validate_slug
from rag_pipeline.registries import RegistryReport, read_registry
from rag_pipeline.settings import data_dir

MODELS_ENV = "RAG_PIPELINE_MODELS"

BACKENDS = ("transformers", "llama-cpp", "openai", "recorded", "extractive")
DTYPES = ("bfloat16", "float16", "float32", "auto")
QUANTIZATIONS = (None, "8bit", "4bit")
PROMPT_FAMILIES = ("default", "tlite", "yandexgpt", "qwen3")
TASKS = ("summary", "answer")
EXTRACTIVE_METHODS = ("lead", "top-chunk")
# Not part of the identity: the registry name, words, and what only changes speed or reachability.
IDENTITY_EXCLUDED = frozenset(
    {"name", "description", "batch_size", "timeout_s", "max_retries", "offline", "api_key_env", "context_length"}
)

# What a backend cannot do without: {field: (backends, hint)}.
REQUIRED_BY_BACKEND = {
    "model": (("transformers", "llama-cpp", "openai"), "hub id, local path, packaged-gguf:<file> or served model name"),
    "base_url": (("openai",), "e.g. http://localhost:8000/v1"),
    "recorded_name": (("recorded",), "Tbank, YandexGPT or Qwen3"),
}

# The offline default LLM: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M) shipped in PyPI packages.
PACKAGED_MODEL_PREFIX = "packaged-gguf:"


class ModelRegistryError(ConfigError):
    """A models.yaml entry that cannot be used; the message names the file, the model and the field."""


def _one_of(what: str, choices: tuple) -> BeforeValidator:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"{what} must be one of {list(choices)}, got {value!r}")
        return value

    return BeforeValidator(check)


def _non_negative_number(value: Any) -> Any:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
    ):
        raise ValueError(f"must be a non-negative number, got {value!r}")
    return value


def _non_negative_integer(value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"must be a non-negative integer, got {value!r}")
    return value


def _positive_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"must be a positive number, got {value!r}")
    return value


# int | float keeps the number as written (1 stays 1): the identity, hence cache keys, depend on it.
NonNegativeNumber = Annotated[int | float | None, BeforeValidator(_non_negative_number)]
NonNegativeInteger = Annotated[int | None, BeforeValidator(_non_negative_integer)]
Task = Annotated[str, _one_of("each task", TASKS)]
NonEmptyString = Annotated[str, Field(min_length=1)]


class Decoding(Section):
    """Decoding parameters; only the keys an entry sets are part of it (``given()``, the dump)."""

    do_sample: bool | None = None
    temperature: NonNegativeNumber = None
    top_p: NonNegativeNumber = None
    top_k: NonNegativeInteger = None
    min_p: NonNegativeNumber = None
    repetition_penalty: NonNegativeNumber = None
    seed: NonNegativeInteger = None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                raise ValueError(f"unknown decoding keys {unknown}; allowed: {list(cls.model_fields)}")
        return data

    @model_validator(mode="after")
    def _sampling_needs_temperature(self):
        temperature = self.temperature if "temperature" in self.model_fields_set else 1.0
        if self.do_sample and not temperature:
            raise ValueError("sampling needs temperature > 0")
        return self

    def given(self) -> dict:
        """The parameters the entry set (an explicit null included), in declaration order."""
        return {key: getattr(self, key) for key in type(self).model_fields if key in self.model_fields_set}

    @model_serializer
    def _dump_given(self) -> dict:
        return self.given()


DECODING_KEYS = tuple(Decoding.model_fields)


class ModelSpec(Section):
    """One generation model and how to prompt and decode with it (a ``models.yaml`` entry)."""

    name: str
    backend: Annotated[str, _one_of("backend", BACKENDS)]
    description: str | None = ""
    model: str | None = Field("", validate_default=True)  # hub id, local path, or packaged-gguf:<file>
    revision: str | None = None
    dtype: Annotated[str, _one_of("dtype", DTYPES)] = "auto"
    quantization: Annotated[str | None, _one_of("quantization", QUANTIZATIONS)] = None  # bitsandbytes, CUDA
    trust_remote_code: bool = False
    prompt_family: Annotated[str, _one_of("prompt_family", PROMPT_FAMILIES)] = "default"
    system_role: bool = True  # False: instructions go into user turns (YandexGPT has no system role)
    # The assistant turn is continued from this text: one string for every task, or {task: text}.
    assistant_prefill: str | dict[str, str] | None = None
    stop_strings: tuple[NonEmptyString, ...] = Field((), strict=False)  # extra end markers, e.g. "<|eot_id|>"
    enable_thinking: bool | None = None  # passed to the chat template (Qwen3); None: not passed
    decoding: Decoding = Decoding()
    task_decoding: dict[Annotated[str, _one_of("task_decoding task", TASKS)], Decoding] = Field(default_factory=dict)
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(1, ge=1)
    tasks: tuple[Task, ...] = Field(TASKS, strict=False)  # a YAML list
    # llama-cpp backend: tokens of context per sequence (prompt + output); None: the model's own. A longer prompt
    # fails its item with a message; the outputs of the prompts that fit do not depend on it.
    context_length: int | None = Field(None, ge=64)
    offline: bool = False  # runs on a machine without a model hub (the demo uses these)
    # openai backend
    base_url: str | None = Field(None, validate_default=True)
    api_key_env: str | None = None  # the NAME of the variable holding the key, never the key
    timeout_s: Annotated[int | float, BeforeValidator(_positive_number)] = 120.0
    max_retries: int = Field(4, ge=0)
    # recorded backend: the reference study's model key ("Tbank", "YandexGPT", "Qwen3")
    recorded_name: str | None = Field(None, validate_default=True)
    # extractive backend: {"method": "lead", "sentences": 3} or {"method": "top-chunk"}
    extractive: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    # ---- validation (the checks that span fields read the already validated `backend`) ----
    @field_validator("name")
    @classmethod
    def _slug_name(cls, name: str) -> str:
        return validate_slug(name, "model name")

    @field_validator("decoding", "task_decoding", "extractive", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator(*REQUIRED_BY_BACKEND)
    @classmethod
    def _required_by_backend(cls, value: str | None, info: ValidationInfo) -> str | None:
        backend = info.data.get("backend")
        backends, hint = REQUIRED_BY_BACKEND[info.field_name]
        if backend in backends and not value:
            raise ValueError(f"backend {backend!r} needs {info.field_name!r} ({hint})")
        return value

    @field_validator("model")
    @classmethod
    def _gguf_for_llama_cpp(cls, model: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("backend") == "llama-cpp" and model and not (
            model.startswith(PACKAGED_MODEL_PREFIX) or model.endswith(".gguf") or Path(model).expanduser().is_dir()
        ):
            raise ValueError(
                f"backend 'llama-cpp' loads a GGUF file: a local path ending in .gguf, a directory holding one, "
                f"or {PACKAGED_MODEL_PREFIX}<file>; got {model!r}"
            )
        return model

    @field_validator("quantization")
    @classmethod
    def _quantization_on_transformers(cls, quantization: str | None, info: ValidationInfo) -> str | None:
        if quantization and info.data.get("backend", "transformers") != "transformers":
            raise ValueError("quantization applies to the transformers backend only")
        return quantization

    @field_validator("assistant_prefill", mode="before")
    @classmethod
    def _prefill(cls, prefill: Any) -> Any:
        if isinstance(prefill, dict):
            for task, text in prefill.items():
                if task not in TASKS:
                    raise ValueError(f"assistant_prefill task must be one of {list(TASKS)}, got {task!r}")
                if not isinstance(text, str) or not text:
                    raise ValueError(f"assistant_prefill.{task} must be a non-empty string")
        elif prefill is not None and (not isinstance(prefill, str) or not prefill):
            raise ValueError("assistant_prefill must be a string, a {task: string} mapping or null")
        return prefill

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_list(cls, tasks: Any) -> Any:
        if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)) or not tasks:
            raise ValueError(f"tasks must be a non-empty list of {list(TASKS)}, got {tasks!r}")
        return [task for index, task in enumerate(tasks) if task not in tasks[:index]]  # first of each

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, env: str | None) -> str | None:
        if env is not None and not env.replace("_", "").isalnum():
            # not echoed: a key pasted here by mistake must not reach logs
            raise ValueError("api_key_env must be the NAME of an environment variable (letters, digits, '_')")
        return env

    @field_validator("extractive")
    @classmethod
    def _extractive_method(cls, extractive: dict, info: ValidationInfo) -> dict:
        if "backend" not in info.data:
            return extractive  # the backend is invalid (reported); nothing to check against
        if info.data["backend"] != "extractive":
            if extractive:
                raise ValueError("extractive parameters apply to backend 'extractive' only")
            return extractive
        method = extractive.get("method")
        if method not in EXTRACTIVE_METHODS:
            raise ValueError(f"extractive.method must be one of {list(EXTRACTIVE_METHODS)}, got {method!r}")
        unknown = sorted(set(extractive) - {"method", "sentences"})
        if unknown:
            raise ValueError(f"unknown extractive keys {unknown}; allowed: ['method', 'sentences']")
        if method == "lead":
            sentences = extractive.get("sentences", 3)
            if isinstance(sentences, bool) or not isinstance(sentences, int) or sentences < 1:
                raise ValueError(f"extractive.sentences must be an integer >= 1, got {sentences!r}")
            extractive = {"method": "lead", "sentences": sentences}
        expected_task = "summary" if method == "lead" else "answer"
        if "tasks" in info.data and info.data["tasks"] != (expected_task,):
            raise ValueError(f"extractive method {method!r} produces only tasks: [{expected_task}]")
        return dict(extractive)

    @classmethod
    def from_dict(cls, data: Any = None, where: str | None = None, error: type[ConfigError] | None = None) -> ModelSpec:
        """Validate one registry entry; errors (:class:`ModelRegistryError`) name ``where``, the model
        and the field, and never echo an API key."""
        where = where or "models.yaml"
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict) or "name" not in data:
            raise ModelRegistryError(f"{where}: each model needs a 'name'")
        try:
            name = validate_slug(str(data["name"]), "model name")
        except InvalidIdError as exc:
            raise ModelRegistryError(f"{where}: {exc}") from None
        where = f"{where}: model {name!r}"
        if "api_key" in data:
            raise ModelRegistryError(
                f"{where}: never put an API key in the registry; set api_key_env to the variable's name"
            )
        return super().from_dict({**data, "name": name}, where, ModelRegistryError)

    # ---- derived views -------------------------------------------------------------------
    def supports(self, task: str) -> bool:
        """Whether this model produces rows for ``task`` ("summary" or "answer")."""
        return task in self.tasks

    def decoding_for(self, task: str) -> dict:
        """The decoding parameters for one task: ``decoding`` updated by ``task_decoding[task]``."""
        merged = self.decoding.given()
        if task in self.task_decoding:
            merged.update(self.task_decoding[task].given())
        return merged

    def prefill_for(self, task: str) -> str | None:
        """The assistant prefill of one task, or None."""
        if isinstance(self.assistant_prefill, dict):
            return self.assistant_prefill.get(task)
        return self.assistant_prefill

    def identity(self) -> dict:
        """Everything that determines this model's output (the generation cache keys on it).

        Excludes the registry name, the description, ``batch_size`` (greedy batched output equals
        one-at-a-time output), HTTP timeout/retries and ``offline``.
        """
        return {key: value for key, value in self.to_dict().items() if key not in IDENTITY_EXCLUDED}

    def to_dict(self) -> dict:
        """The spec as plain data (for metadata and the CLI); holds no secret, only the env var name."""
        return self.as_dict()

    def replace(self, **changes: Any) -> ModelSpec:
        """A validated copy with some settings changed (``dataclasses.replace`` of the old dataclass)."""
        return type(self).from_dict({**self.to_dict(), **changes}, where="ModelSpec.replace")

    # Equal content, equal hash: the dict fields make pydantic's field-wise hash fail, and 1 == 1.0.
    def __hash__(self) -> int:
        return hash(canonical_json(self.to_dict()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        return canonical_json(self.to_dict()) == canonical_json(other.to_dict())


def spec_from_entry(entry: Any, where: str = "models.yaml") -> ModelSpec:
    """Validate one registry entry (a mapping) into a :class:`ModelSpec`."""
    return ModelSpec.from_dict(entry, where)


def default_models_path() -> Path:
    """``$RAG_PIPELINE_MODELS`` or data/models.yaml."""
    return Path(os.environ.get(MODELS_ENV) or data_dir() / "models.yaml")


def read_models(path: str | os.PathLike | None = None) -> RegistryReport[ModelSpec]:
    """Read the model registry: the valid entries, and an error (file, model, field) per skipped one.

    A missing or unparsable file, a missing ``models`` list and duplicate names raise."""
    return read_registry(
        Path(path) if path else default_models_path(),
        "models",
        spec_from_entry,
        key_field="name",
        kind="model name",
        error=ModelRegistryError,
        what="model registry",
    )


def load_models(path: str | os.PathLike | None = None) -> list[ModelSpec]:
    """The valid entries of the model registry; skipped entries are logged as warnings."""
    report = read_models(path)
    report.log_errors()
    return list(report.entries)


def models_by_name(path: str | os.PathLike | None = None) -> dict[str, ModelSpec]:
    """The registry as ``{name: ModelSpec}``."""
    return {spec.name: spec for spec in load_models(path)}


def get_model(name: str, path: str | os.PathLike | None = None) -> ModelSpec:
    """One registry entry by name; an unknown name is an error listing the known ones, a skipped
    (invalid) entry an error giving the reason."""
    report = read_models(path)
    specs = {spec.name: spec for spec in report.entries}
    if name in specs:
        return specs[name]
    skipped = report.error_for(name)
    if skipped is not None:
        raise ModelRegistryError(f"model {name!r} is invalid: {skipped}")
    raise ModelRegistryError(f"unknown model {name!r}; the registry has: {sorted(specs)}")
