"""The model registry (``data/models.yaml``): which LLMs (or stand-ins) produce summaries and answers.

Each entry becomes a frozen :class:`ModelSpec`. Everything that changes a model's output is part of
:meth:`ModelSpec.identity`, which the generation cache keys on; settings that only change speed
(``batch_size``, HTTP timeout, retries) are not.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rag_pipeline.config import read_yaml
from rag_pipeline.hashing import canonical_json
from rag_pipeline.ids import InvalidIdError, validate_slug
from rag_pipeline.settings import data_dir

MODELS_ENV = "RAG_PIPELINE_MODELS"

BACKENDS = ("transformers", "openai", "recorded", "extractive")
DTYPES = ("bfloat16", "float16", "float32", "auto")
QUANTIZATIONS = (None, "8bit", "4bit")
PROMPT_FAMILIES = ("default", "tlite", "yandexgpt", "qwen3")
TASKS = ("summary", "answer")
DECODING_KEYS = (
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "seed",
)
EXTRACTIVE_METHODS = ("lead", "top-chunk")

# The offline default LLM: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M) shipped in PyPI packages.
PACKAGED_MODEL_PREFIX = "packaged-gguf:"


class ModelRegistryError(ValueError):
    """A models.yaml entry that cannot be used; the message names the file and the model."""


@dataclass(frozen=True)
class ModelSpec:
    """One generation model and how to prompt and decode with it."""

    name: str
    backend: str
    description: str = ""
    model: str = ""  # hub id, local path, or "packaged-gguf:<file>" for the packaged offline model
    revision: str | None = None
    dtype: str = "auto"
    quantization: str | None = None  # bitsandbytes on CUDA only
    trust_remote_code: bool = False
    prompt_family: str = "default"
    system_role: bool = (
        True  # False: instructions go into user turns (YandexGPT has no system role)
    )
    # The assistant turn is continued from this text: one string for every task, or {task: text}.
    assistant_prefill: str | dict | None = None
    stop_strings: tuple[
        str, ...
    ] = ()  # extra end markers, e.g. "<|eot_id|>" (token id when one token)
    enable_thinking: bool | None = None  # passed to the chat template (Qwen3); None: not passed
    decoding: dict = field(default_factory=dict)
    task_decoding: dict = field(default_factory=dict)  # per-task overrides of `decoding`
    max_new_tokens: int = 256
    batch_size: int = 1
    tasks: tuple[str, ...] = TASKS
    offline: bool = False  # runs on a machine without a model hub (the demo uses these)
    # openai backend
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 4
    # recorded backend: the reference study's model key ("Tbank", "YandexGPT", "Qwen3")
    recorded_name: str | None = None
    # extractive backend: {"method": "lead", "sentences": 3} or {"method": "top-chunk"}
    extractive: dict = field(default_factory=dict)

    def __hash__(self) -> int:
        # The dict fields make the generated hash fail; hash the canonical content instead.
        return hash(canonical_json(self.to_dict()))

    # ---- derived views -------------------------------------------------------------------
    def supports(self, task: str) -> bool:
        """Whether this model produces rows for ``task`` ("summary" or "answer")."""
        return task in self.tasks

    def decoding_for(self, task: str) -> dict:
        """The decoding parameters for one task: ``decoding`` updated by ``task_decoding[task]``."""
        merged = dict(self.decoding)
        merged.update(self.task_decoding.get(task, {}))
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
        excluded = {
            "name",
            "description",
            "batch_size",
            "timeout_s",
            "max_retries",
            "offline",
            "api_key_env",
        }
        identity = {key: value for key, value in asdict(self).items() if key not in excluded}
        identity["stop_strings"] = list(self.stop_strings)
        identity["tasks"] = list(self.tasks)
        return identity

    def to_dict(self) -> dict:
        """The spec as plain data (for metadata and the CLI); holds no secret, only the env var name."""
        data = asdict(self)
        data["stop_strings"] = list(self.stop_strings)
        data["tasks"] = list(self.tasks)
        return data


_FIELD_NAMES = {f.name for f in fields(ModelSpec)}


def _fail(where: str, name: str, message: str) -> ModelRegistryError:
    return ModelRegistryError(f"{where}: model {name!r}: {message}")


def _check_choice(where: str, name: str, key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise _fail(where, name, f"{key} must be one of {list(choices)}, got {value!r}")


def _check_decoding(where: str, name: str, key: str, decoding: Any) -> dict:
    if not isinstance(decoding, dict):
        raise _fail(where, name, f"{key} must be a mapping, got {type(decoding).__name__}")
    unknown = sorted(set(decoding) - set(DECODING_KEYS))
    if unknown:
        raise _fail(where, name, f"unknown {key} keys {unknown}; allowed: {list(DECODING_KEYS)}")
    for param, value in decoding.items():
        if value is None:
            continue
        if param == "do_sample":
            if not isinstance(value, bool):
                raise _fail(where, name, f"{key}.do_sample must be true or false, got {value!r}")
        elif param in ("top_k", "seed"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _fail(
                    where, name, f"{key}.{param} must be a non-negative integer, got {value!r}"
                )
        else:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise _fail(
                    where, name, f"{key}.{param} must be a non-negative number, got {value!r}"
                )
    if decoding.get("do_sample") and not decoding.get("temperature", 1.0):
        raise _fail(where, name, f"{key}: sampling needs temperature > 0")
    return dict(decoding)


def spec_from_entry(entry: Any, where: str = "models.yaml") -> ModelSpec:
    """Validate one registry entry (a mapping) into a :class:`ModelSpec`."""
    if not isinstance(entry, dict) or "name" not in entry:
        raise ModelRegistryError(f"{where}: each model needs a 'name'")
    raw_name = entry["name"]
    try:
        name = validate_slug(str(raw_name), "model name")
    except InvalidIdError as exc:
        raise ModelRegistryError(f"{where}: {exc}") from exc
    if "api_key" in entry:
        raise _fail(
            where,
            name,
            "never put an API key in the registry; set api_key_env to the variable's name",
        )
    unknown = sorted(set(entry) - _FIELD_NAMES)
    if unknown:
        raise _fail(where, name, f"unknown keys {unknown}; allowed: {sorted(_FIELD_NAMES)}")
    values = dict(entry)
    values["name"] = name
    if "backend" not in values:
        raise _fail(where, name, f"needs a 'backend' (one of {list(BACKENDS)})")
    _check_choice(where, name, "backend", values["backend"], BACKENDS)
    _check_choice(where, name, "dtype", values.get("dtype", "auto"), DTYPES)
    _check_choice(where, name, "quantization", values.get("quantization"), QUANTIZATIONS)
    _check_choice(
        where, name, "prompt_family", values.get("prompt_family", "default"), PROMPT_FAMILIES
    )
    for flag in ("system_role", "trust_remote_code", "offline"):
        if flag in values and not isinstance(values[flag], bool):
            raise _fail(where, name, f"{flag} must be true or false, got {values[flag]!r}")
    if values.get("enable_thinking") is not None and not isinstance(
        values["enable_thinking"], bool
    ):
        raise _fail(
            where,
            name,
            f"enable_thinking must be true, false or null, got {values['enable_thinking']!r}",
        )
    for number, minimum in (("max_new_tokens", 1), ("batch_size", 1), ("max_retries", 0)):
        value = values.get(number, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _fail(where, name, f"{number} must be an integer >= {minimum}, got {value!r}")
    timeout = values.get("timeout_s", 1.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise _fail(where, name, f"timeout_s must be a positive number, got {timeout!r}")
    tasks = values.get("tasks", list(TASKS))
    if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)) or not tasks:
        raise _fail(where, name, f"tasks must be a non-empty list of {list(TASKS)}, got {tasks!r}")
    for task in tasks:
        _check_choice(where, name, "each task", task, TASKS)
    values["tasks"] = tuple(dict.fromkeys(tasks))
    stops = values.get("stop_strings", [])
    if (
        isinstance(stops, str)
        or not isinstance(stops, (list, tuple))
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise _fail(where, name, f"stop_strings must be a list of non-empty strings, got {stops!r}")
    values["stop_strings"] = tuple(stops)
    prefill = values.get("assistant_prefill")
    if isinstance(prefill, dict):
        for task, text in prefill.items():
            _check_choice(where, name, "assistant_prefill task", task, TASKS)
            if not isinstance(text, str) or not text:
                raise _fail(where, name, f"assistant_prefill.{task} must be a non-empty string")
        values["assistant_prefill"] = dict(prefill)
    elif prefill is not None and (not isinstance(prefill, str) or not prefill):
        raise _fail(
            where, name, "assistant_prefill must be a string, a {task: string} mapping or null"
        )
    values["decoding"] = _check_decoding(where, name, "decoding", values.get("decoding") or {})
    task_decoding = values.get("task_decoding") or {}
    if not isinstance(task_decoding, dict):
        raise _fail(where, name, "task_decoding must map a task to decoding overrides")
    for task, overrides in task_decoding.items():
        _check_choice(where, name, "task_decoding task", task, TASKS)
        _check_decoding(where, name, f"task_decoding.{task}", overrides)
    values["task_decoding"] = {task: dict(o) for task, o in task_decoding.items()}
    for key in ("model", "description", "revision", "base_url", "api_key_env", "recorded_name"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise _fail(where, name, f"{key} must be a string, got {values[key]!r}")

    backend = values["backend"]
    if backend in ("transformers", "openai") and not values.get("model"):
        raise _fail(
            where,
            name,
            f"backend {backend!r} needs 'model' (hub id, local path or served model name)",
        )
    if values.get("quantization") and backend != "transformers":
        raise _fail(where, name, "quantization applies to the transformers backend only")
    if backend == "openai":
        if not values.get("base_url"):
            raise _fail(
                where, name, "backend 'openai' needs 'base_url' (e.g. http://localhost:8000/v1)"
            )
        env = values.get("api_key_env")
        if env is not None and not env.replace("_", "").isalnum():
            raise _fail(where, name, f"api_key_env must name an environment variable, got {env!r}")
    if backend == "recorded" and not values.get("recorded_name"):
        raise _fail(
            where, name, "backend 'recorded' needs 'recorded_name' (Tbank, YandexGPT or Qwen3)"
        )
    extractive = values.get("extractive") or {}
    if not isinstance(extractive, dict):
        raise _fail(where, name, "extractive must be a mapping, e.g. {method: lead, sentences: 3}")
    if backend == "extractive":
        _check_choice(
            where, name, "extractive.method", extractive.get("method"), EXTRACTIVE_METHODS
        )
        unknown_params = sorted(set(extractive) - {"method", "sentences"})
        if unknown_params:
            raise _fail(
                where,
                name,
                f"unknown extractive keys {unknown_params}; allowed: ['method', 'sentences']",
            )
        if extractive["method"] == "lead":
            sentences = extractive.get("sentences", 3)
            if isinstance(sentences, bool) or not isinstance(sentences, int) or sentences < 1:
                raise _fail(
                    where, name, f"extractive.sentences must be an integer >= 1, got {sentences!r}"
                )
            extractive = {"method": "lead", "sentences": sentences}
        expected_task = "summary" if extractive["method"] == "lead" else "answer"
        if values["tasks"] != (expected_task,):
            raise _fail(
                where,
                name,
                f"extractive method {extractive['method']!r} produces only tasks: [{expected_task}]",
            )
    elif extractive:
        raise _fail(where, name, "extractive parameters apply to backend 'extractive' only")
    values["extractive"] = dict(extractive)
    return ModelSpec(**values)


def default_models_path() -> Path:
    """``$RAG_PIPELINE_MODELS`` or data/models.yaml."""
    return Path(os.environ.get(MODELS_ENV) or data_dir() / "models.yaml")


def load_models(path: str | os.PathLike | None = None) -> list[ModelSpec]:
    """Read the model registry; names must be unique slugs, every entry is validated."""
    path = Path(path) if path else default_models_path()
    loaded = read_yaml(path, ModelRegistryError, "model registry") or {}
    if not isinstance(loaded, dict) or not isinstance(loaded.get("models", []), list):
        raise ModelRegistryError(f"{path}: expected a mapping with a 'models' list")
    specs = [
        spec_from_entry(entry, f"{path} entry {i}")
        for i, entry in enumerate(loaded.get("models") or [])
    ]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ModelRegistryError(f"{path}: duplicate model name {spec.name!r}")
        seen.add(spec.name)
    return specs


def models_by_name(path: str | os.PathLike | None = None) -> dict[str, ModelSpec]:
    """The registry as ``{name: ModelSpec}``."""
    return {spec.name: spec for spec in load_models(path)}


def get_model(name: str, path: str | os.PathLike | None = None) -> ModelSpec:
    """One registry entry by name; an unknown name is an error listing the known ones."""
    specs = models_by_name(path)
    if name not in specs:
        raise ModelRegistryError(f"unknown model {name!r}; the registry has: {sorted(specs)}")
    return specs[name]
