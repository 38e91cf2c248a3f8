"""Small helpers shared by the index modules: config parsing, text checks, device choice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields


def config_from_dict(cls, data, what: str):
    """Build a config dataclass from a mapping (None → defaults), refusing unknown keys by name."""
    if data is None:
        return cls()
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise TypeError(f"{what} configuration must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"unknown {what} configuration key(s) {unknown}; known keys: {sorted(known)}"
        )
    return cls(**data)


def check_texts(texts: Sequence[str], who: str) -> list[str]:
    """``texts`` as a list of str; a bare string or a non-str item is a TypeError naming ``who``."""
    if isinstance(texts, str):
        raise TypeError(f"{who}: pass a list of texts, not a single string")
    texts = list(texts)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{who}: text {position} is {type(text).__name__}, expected str")
    return texts


def resolve_device(device: str | None) -> str:
    """The torch device to use: the given one, else cuda when available, else cpu."""
    if device:
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
