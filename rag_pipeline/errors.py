"""Errors shared by the core packages."""

from __future__ import annotations


class ModelUnavailableError(RuntimeError):
    """A model (embedder, reranker, LLM) that cannot be loaded; says how to point at a local copy."""

    DEFAULT_HINT = (
        "No model hub is reachable from this machine? "
        "Download the model elsewhere (e.g. `huggingface-cli download <id> --local-dir DIR`) and "
        "set the registry/config entry's `model` to that local directory."
    )

    def __init__(self, model: str, reason: str, hint: str | None = None):
        self.model = model
        self.reason = reason
        # `hint` replaces the download advice where it does not apply (e.g. a GPU-only setting).
        super().__init__(f"cannot load model {model!r}: {reason}. {hint or self.DEFAULT_HINT}")
