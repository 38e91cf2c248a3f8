"""Small helpers shared by the index modules: text checks, device choice."""

from __future__ import annotations

from collections.abc import Sequence


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
        import torch  # imported on use: seconds to import, and only model-backed kinds need it

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
