"""The one interface every generation backend implements, and text post-processing they share."""

from __future__ import annotations

import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from tqdm.auto import tqdm

from rag_pipeline.generate.types import GenerationRequest

_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)

# TEST HOOK, never set in real runs: seconds the recorded and extractive backends sleep per item, so
# the crash-safety tests can kill a run in the middle of generating (rag_pipeline_tests/defs/test_crash_safety.py).
TEST_HOOK_ITEM_DELAY_ENV = "RAG_PIPELINE_TEST_HOOK_ITEM_DELAY_S"


@dataclass
class GenerationResult:
    """What a backend returns for one request (in request order).

    ``prompt`` is the exact text the model saw when the backend rendered one (a chat template);
    None lets the runner store the model-independent plain rendering instead.
    """

    output: str = ""
    thinking: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    error: str = ""
    prompt: str | None = None
    notes: str = ""
    out_of_memory: bool = False  # the accelerator ran out of memory: the partition must fail, not store gaps
    # For a request with ``want_logprobs``: {"A": p, "B": p} at the first answer-label token,
    # normalised over the labels; None where the backend gives no token log-probabilities.
    label_probabilities: dict[str, float] | None = None


class OutOfMemoryError(RuntimeError):
    """A batch did not fit in accelerator memory; the rows that did generate are cached already."""


# Called as each batch completes: (indices into the requests, their results). The runner caches them
# there, so a crash loses at most the batch in flight.
BatchCallback = Callable[[list[int], list[GenerationResult]], None]


class Backend(ABC):
    """Generates outputs for a list of requests with one loaded model."""

    def __init__(self, spec):
        self.spec = spec

    @abstractmethod
    def generate(
        self, requests: list[GenerationRequest], progress: bool = True, on_batch: BatchCallback | None = None
    ) -> list[GenerationResult]:
        """One result per request, in request order; a failed item is a result with ``error`` set.

        ``on_batch(indices, results)`` is called as each batch completes (indices into ``requests``).
        """

    def close(self) -> None:
        """Release the model and its memory (no-op for backends that hold none)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def generate_item_by_item(
    backend: Backend,
    requests: list[GenerationRequest],
    one: Callable[[GenerationRequest], GenerationResult],
    progress: bool,
    on_batch: BatchCallback | None,
    desc: str,
) -> list[GenerationResult]:
    """``one(request)`` for every request, reported in batches of ``spec.batch_size`` (backends without a model)."""
    delay = float(os.environ.get(TEST_HOOK_ITEM_DELAY_ENV) or 0)
    size = backend.spec.batch_size
    results: list[GenerationResult] = []
    with tqdm(total=len(requests), disable=not progress, desc=desc, unit="item") as bar:
        for start in range(0, len(requests), size):
            batch = []
            for request in requests[start : start + size]:
                if delay:
                    time.sleep(delay)  # the test hook above
                batch.append(one(request))
            results += batch
            bar.update(len(batch))
            if on_batch is not None:
                on_batch(list(range(start, start + len(batch))), batch)
    return results


Group = tuple[str, int | None]  # (task, the request's max_new_tokens): requests that decode alike


def generate_in_batches(
    backend: Backend,
    requests: list[GenerationRequest],
    prompts: list[str],
    token_ids: list[list[int]],
    run_batch: Callable[[Group, list[int]], list[GenerationResult]],
    progress: bool,
    on_batch: BatchCallback | None,
) -> list[GenerationResult]:
    """The batching of the model backends: requests grouped by task and token limit, longest prompt
    first (similar lengths share a batch; an out-of-memory shows early), cut into batches of
    ``spec.batch_size``; ``run_batch(group, indices)`` generates one. Results in request order, each
    with its rendered prompt; ``on_batch`` is called as each batch completes."""
    groups: dict[Group, list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault((request.task, request.max_new_tokens), []).append(index)
    size = backend.spec.batch_size
    batches = []
    for group, indices in groups.items():
        indices.sort(key=lambda i: len(token_ids[i]), reverse=True)
        batches.extend((group, indices[start : start + size]) for start in range(0, len(indices), size))
    results: list[GenerationResult | None] = [None] * len(requests)
    with tqdm(total=len(requests), disable=not progress, desc=f"generate {backend.spec.name}", unit="item") as bar:
        for group, batch in batches:
            for index, result in zip(batch, run_batch(group, batch)):
                result.prompt = prompts[index]
                results[index] = result
            bar.update(len(batch))
            if on_batch is not None:
                on_batch(list(batch), [results[i] for i in batch])
    return results  # type: ignore[return-value]


def split_thinking(text: str) -> tuple[str, str]:
    """Split ``<think>...</think>`` reasoning from an answer: returns (answer, thinking).

    Handles a template that opened the think block in the prompt (only ``</think>`` in the output)
    and an unfinished block (cut by max_new_tokens: everything is thinking, the answer is empty).
    """
    thoughts = [match.strip() for match in _THINK_BLOCK.findall(text)]
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text:
        before, _, text = text.partition("</think>")
        thoughts.insert(0, before.replace("<think>", "").strip())
    elif "<think>" in text:
        text, _, unfinished = text.partition("<think>")
        thoughts.append(unfinished.strip())
    return text.strip(), "\n\n".join(t for t in thoughts if t)


def label_probabilities(tokens: list[dict], labels: str = "AB") -> dict[str, float] | None:
    """Label probabilities from OpenAI-style token log-probabilities (``logprobs.content``: per token
    ``token`` and ``top_logprobs``): at the first token that is a label (JSON quotes and spaces
    stripped), the probability mass of each label among its alternatives, normalised."""
    import math

    def as_label(token: object) -> str:
        # '"A' and ' A' are the label A; a bare quote or space is no label (an empty string is `in` any string)
        return str(token or "").strip().strip('"').strip()

    for entry in tokens or []:
        if as_label(entry.get("token")) in set(labels):
            mass = dict.fromkeys(labels, 0.0)
            for alternative in entry.get("top_logprobs") or [entry]:
                token = as_label(alternative.get("token"))
                if token in mass and alternative.get("logprob") is not None:
                    mass[token] += math.exp(float(alternative["logprob"]))
            total = sum(mass.values())
            return {label: value / total for label, value in mass.items()} if total > 0 else None
    return None


def cut_at_stop_strings(text: str, stop_strings: tuple[str, ...] | list[str]) -> str:
    """The text before the first occurrence of any stop string."""
    positions = [text.find(stop) for stop in stop_strings if stop and stop in text]
    return text[: min(positions)] if positions else text
