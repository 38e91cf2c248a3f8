"""Generation: model registry, prompts, backends, the model pool and the generation cache (no Dagster).

Modules:
- ``registry``: ``data/models.yaml`` as frozen :class:`ModelSpec` entries (``models_by_name``).
- ``types``: what to ask (:class:`GenerationRequest`) and what came back (:class:`GenerationRow`,
  ``rows_to_frame``).
- ``requests``: a paper's requests for a model (``summary_requests`` / ``answer_requests``).
- ``prompts``: prompt templates per task and prompt family, and their rendering.
- ``backends/``: the :class:`Backend` interface (``base``) and one file per backend
  (``transformers_backend``, ``openai_backend``, ``recorded_backend``, ``extractive_backend``);
  ``load_backend`` picks one.
- ``pool``: ``ModelPool``, at most one generation model loaded per process.
- ``runner``: ``run_generation``, cache look-up, one model load for the misses, rows out.
- ``packaged_model``: the offline default LLM shipped inside PyPI packages.

The generation stage (``rag_pipeline.stages.generation``) calls, per model × paper partition::

    spec = models_by_name()[model]
    requests = summary_requests(spec, paper, abstract, conclusion)   # or answer_requests(...)
    rows = run_generation(spec, requests, cache=cache, pool=pool, state=state)
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
from rag_pipeline.generate.requests import answer_requests, summary_requests
from rag_pipeline.generate.runner import generation_cache, run_generation
from rag_pipeline.generate.types import GenerationRequest, GenerationRow, rows_to_frame

__all__ = [
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
