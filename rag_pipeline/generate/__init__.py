"""Generation: model registry, prompts, backends, batching and the generation cache (no Dagster).

The Dagster assets ``summaries`` and ``answers`` (paper × model) call, per partition::

    spec = models_by_name()[model]
    requests = summary_requests(spec, paper, abstract, conclusion)   # or answer_requests(...)
    rows = run_generation(spec, requests, cache=generation_cache(state), state=state)
    frame = rows_to_frame(rows)
"""

from rag_pipeline.generate.backends import Backend, GenerationResult, load_backend
from rag_pipeline.generate.prompts import (
    PROMPT_VERSION,
    answer_messages,
    render_prompt,
    summary_messages,
)
from rag_pipeline.generate.registry import (
    ModelRegistryError,
    ModelSpec,
    get_model,
    load_models,
    models_by_name,
)
from rag_pipeline.generate.runner import generation_cache, run_generation
from rag_pipeline.generate.types import (
    GENERATION_COLUMNS,
    GenerationRequest,
    GenerationRow,
    answer_requests,
    rows_to_frame,
    summary_requests,
)

__all__ = [
    "GENERATION_COLUMNS",
    "PROMPT_VERSION",
    "Backend",
    "GenerationRequest",
    "GenerationResult",
    "GenerationRow",
    "ModelRegistryError",
    "ModelSpec",
    "answer_messages",
    "answer_requests",
    "generation_cache",
    "get_model",
    "load_backend",
    "load_models",
    "models_by_name",
    "render_prompt",
    "rows_to_frame",
    "run_generation",
    "summary_messages",
    "summary_requests",
]
