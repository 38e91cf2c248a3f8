"""One call per (model, list of requests): cache look-up, one model load for the misses, rows out.

The cache key of an item is everything that determines its output: the model's identity, the
rendered prompt (model-independent plain rendering, so a look-up needs no tokenizer) and the task;
recorded outputs are looked up by item, so their key includes the item id. Hits are returned
without loading the model (``cache_hit=True``, the originally measured latency kept). Failures are
rows with ``error`` and are not cached: they are retried on the next run. Outputs are cached as
each batch completes, so a run killed mid-generation loses at most the batch in flight.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rag_pipeline.cache import ContentCache
from rag_pipeline.generate.backends import Backend, GenerationResult, load_backend
from rag_pipeline.generate.backends.base import OutOfMemoryError
from rag_pipeline.generate.pool import ModelPool
from rag_pipeline.generate.prompts import (
    PROMPT_VERSION,
    continues_prefill,
    plain_render,
    prompt_hash,
)
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.generate.types import GenerationRequest, GenerationRow, decoding_json
from rag_pipeline.hashing import content_hash
from rag_pipeline.model_source import model_revision
from rag_pipeline.settings import StatePaths, state_paths

# What a cache entry keeps: the model's answer and how it was measured, not the item's ids.
_CACHED_FIELDS = (
    "output",
    "thinking",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "prompt",
    "model_revision",
    "created_at",
    "notes",
)


def generation_cache(state: StatePaths | None = None) -> ContentCache:
    """The generation cache of a state directory."""
    return ContentCache((state or state_paths()).generation_cache)


def weights_identity(spec: ModelSpec) -> str | dict | None:
    """What identifies the weights when the registry entry does not: the content hash of a local
    model directory, or the hub commit in the local cache when no revision is pinned. Replacing
    the weights behind a path then misses the cache instead of serving old outputs. For llama.cpp
    also the engine's version: another llama.cpp build may compute other logits."""
    if spec.backend == "llama-cpp":
        from rag_pipeline.generate.backends.llama_cpp_backend import batch_invariant, engine_version, gguf_identity

        identity = {"engine": engine_version(), "gguf": gguf_identity(spec)}
        if not batch_invariant():  # this build's batched outputs may differ: cached per batch size
            identity["batch_size"] = spec.batch_size
        return identity
    if spec.backend != "transformers" or spec.revision or str(spec.model).startswith("packaged-gguf:"):
        return None
    return model_revision(str(spec.model))


def cache_key(spec: ModelSpec, request: GenerationRequest) -> str:
    """The cache key of one request for one model."""
    identity = {
        "model": spec.identity(),
        "task": request.task,
        "prompt": plain_render(request.messages, continues_prefill(spec, request.messages)),
    }
    if spec.backend == "recorded":
        identity["item"] = [request.paper_id, request.item_id]
    weights = weights_identity(spec)
    if weights is not None:
        identity["weights"] = weights
    return ContentCache.key_for(identity)


def generation_id(key: str, request: GenerationRequest) -> str:
    """The content id of a row: its cache key plus the item it answers."""
    return content_hash(
        {"key": key, "task": request.task, "paper": request.paper_id, "item": request.item_id}
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(
    spec: ModelSpec, request: GenerationRequest, key: str, values: dict, cache_hit: bool
) -> GenerationRow:
    prompt = values.get("prompt") or plain_render(
        request.messages, continues_prefill(spec, request.messages)
    )
    return GenerationRow(
        generation_id=generation_id(key, request),
        task=request.task,
        paper_id=request.paper_id,
        item_id=request.item_id,
        model=spec.name,
        backend=spec.backend,
        model_revision=values.get("model_revision") or spec.revision or "",
        prompt_version=PROMPT_VERSION,
        prompt_hash=prompt_hash(request.messages),
        prompt=prompt,
        decoding=decoding_json(spec, request.task),
        context_ids=json.dumps(list(request.context_ids), ensure_ascii=False),
        output=values.get("output") or "",
        thinking=values.get("thinking") or "",
        latency_s=values.get("latency_s"),
        input_tokens=values.get("input_tokens"),
        output_tokens=values.get("output_tokens"),
        cache_hit=cache_hit,
        error=values.get("error") or "",
        created_at=values.get("created_at") or _now(),
        notes=values.get("notes") or "",
    )


def _result_values(result: GenerationResult, backend: Backend) -> dict:
    values = {
        "output": result.output,
        "thinking": result.thinking,
        "latency_s": result.latency_s,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "prompt": result.prompt,
        "model_revision": getattr(backend, "resolved_revision", None),
        "created_at": _now(),
        "notes": result.notes,
        "error": result.error,
    }
    if not result.error and not (result.output or "").strip():
        values["error"] = "the model returned no answer text" + (
            " (only <think> reasoning: raise max_new_tokens or disable thinking)"
            if result.thinking
            else ""
        )
    return values


def run_generation(
    spec: ModelSpec,
    requests: list[GenerationRequest],
    *,
    cache: ContentCache,
    backend: Backend | None = None,
    pool: ModelPool | None = None,
    progress: bool = True,
    state: StatePaths | None = None,
) -> list[GenerationRow]:
    """Generate (or fetch from ``cache``) every request with one model; one row per request, in order.

    The model is loaded only if some request misses the cache: ``backend`` given, it is used as is
    and left open; else ``pool`` given, the pool's loaded model is used (and kept for the next
    partition of the same model); else it is loaded via :func:`load_backend` and closed at the end.
    """
    rows: list[GenerationRow | None] = [None] * len(requests)
    keys = [cache_key(spec, request) for request in requests]
    misses: list[int] = []
    for index, (request, key) in enumerate(zip(requests, keys)):
        if request.error:
            rows[index] = _row(spec, request, key, {"error": request.error}, cache_hit=False)
            continue
        cached = cache.get(key)
        if cached is not None:
            rows[index] = _row(spec, request, key, cached, cache_hit=True)
        else:
            misses.append(index)

    if misses:
        owned = backend is None and pool is None
        if backend is not None:
            active = backend
        elif pool is not None:
            active = pool.get(spec, state)
        else:
            active = load_backend(spec, state)
        kept: set[int] = set()

        def keep(positions: list[int], results: list[GenerationResult]) -> None:
            # Cached as each batch completes: a crash or an interrupt loses only the batch in flight.
            for position, result in zip(positions, results):
                index = misses[position]
                row = _row(spec, requests[index], keys[index], _result_values(result, active), cache_hit=False)
                if not row.error:
                    cache.put(keys[index], {field: getattr(row, field) for field in _CACHED_FIELDS})
                rows[index] = row
                kept.add(position)

        try:
            results = active.generate([requests[i] for i in misses], progress=progress, on_batch=keep)
            if len(results) != len(misses):
                raise RuntimeError(
                    f"backend of {spec.name!r} returned {len(results)} results for {len(misses)} requests"
                )
            for position, result in enumerate(results):
                if position not in kept:  # a backend that reported no batches
                    keep([position], [result])
            out_of_memory = [result.error for result in results if result.out_of_memory]
            if out_of_memory:
                # The partition fails (what was stored before stays); the rows that did generate are cached.
                raise OutOfMemoryError(f"model {spec.name!r}: {out_of_memory[0]}")
        finally:
            if owned:
                active.close()
    return rows  # type: ignore[return-value]
