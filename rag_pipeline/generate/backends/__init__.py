"""Generation backends behind one interface (:class:`Backend`) and the factory that picks one."""

from __future__ import annotations

from rag_pipeline.generate.backends.base import Backend, GenerationResult
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.settings import StatePaths


def load_backend(spec: ModelSpec, state: StatePaths | None = None) -> Backend:
    """The backend for ``spec``, with its model loaded (once; reuse it for every request of a run).

    Raises :class:`rag_pipeline.errors.ModelUnavailableError` naming the model when it cannot be
    loaded here (a hub id without a hub, a GPU-only quantization on a CPU machine).
    """
    if spec.backend == "transformers":
        from rag_pipeline.generate.backends.transformers_backend import TransformersBackend

        return TransformersBackend(spec, state)
    if spec.backend == "llama-cpp":
        from rag_pipeline.generate.backends.llama_cpp_backend import LlamaCppBackend

        return LlamaCppBackend(spec, state)
    if spec.backend == "openai":
        from rag_pipeline.generate.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(spec)
    if spec.backend == "recorded":
        from rag_pipeline.generate.backends.recorded_backend import RecordedBackend

        return RecordedBackend(spec)
    if spec.backend == "extractive":
        from rag_pipeline.generate.backends.extractive_backend import ExtractiveBackend

        return ExtractiveBackend(spec)
    raise ValueError(f"model {spec.name!r}: unknown backend {spec.backend!r}")


__all__ = ["Backend", "GenerationResult", "load_backend"]
