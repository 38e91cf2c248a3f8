"""Errors shared by the core packages."""

from __future__ import annotations


class ModelUnavailableError(RuntimeError):
    """A model (embedder, reranker, LLM) that cannot be loaded; says how to point at a local copy."""

    def __init__(self, model: str, reason: str):
        self.model = model
        super().__init__(
            f"cannot load model {model!r}: {reason}. No model hub is reachable from this machine? "
            "Download the model elsewhere (e.g. `huggingface-cli download <id> --local-dir DIR`) and "
            "set the registry/config entry's `model` to that local directory."
        )
