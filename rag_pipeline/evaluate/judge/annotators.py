"""Judge confidence from simulated annotators (Jung et al., "Trust or Escalate", §3).

The judge is asked the same pairwise question K times, each time as a different "annotator": with
its own few-shot examples drawn from the labelled pool (never the item itself) and its own order
of the two outputs. The share of annotators that agree with the majority is the confidence; an
unreadable answer or a tie is no vote and lowers it. Where the backend returns token
log-probabilities, the mean probability the annotators give the majority's label is a second
confidence (``logprob_confidence``), so their calibration can be compared.

All K prompts of all pairs go to the judge in one batch (the llama.cpp and transformers backends batch them,
an OpenAI-compatible server gets concurrent requests up to the model's ``batch_size``).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from rag_pipeline.evaluate.judge.core import Judge
from rag_pipeline.evaluate.judge.pairwise import pairwise_messages, parse_pairwise
from rag_pipeline.evaluate.judge.prompting import SYSTEM_PROMPT, Messages, clip

A, B = "a", "b"  # the pair's own orientation (output_a, output_b), whatever order an annotator saw


@dataclass(frozen=True)
class Pair:
    """Two outputs for one item. ``preferred`` ("A", "B", "tie" or "") is the label, when known."""

    key: str
    task: str
    item_id: str
    context: str
    reference: str
    output_a: str
    output_b: str
    preferred: str = ""


@dataclass(frozen=True)
class AnnotatorSettings:
    annotators: int = 3  # K
    shots: int = 2  # few-shot examples per annotator
    seed: int = 0
    example_chars: int = 600  # each example's outputs and reference are clipped to this
    item_chars: int = 4000  # and the judged pair's (a small CPU judge pays for every prompt token)


@dataclass(frozen=True)
class PairVerdict:
    """The annotators' votes on one pair (in the pair's orientation) and what they add up to."""

    key: str
    votes: tuple[str, ...]  # "a", "b", "tie" or "?" (unreadable / failed) per annotator
    verdict: str | None  # "a", "b", or None when no annotator voted for either
    confidence: float  # share of annotators voting for the verdict (0 without one)
    logprob_confidence: float | None  # mean probability given to the verdict's label, where available


def _rng(seed: int, key: str, annotator: int) -> random.Random:
    return random.Random(f"{seed}|{key}|{annotator}")


def _example_turns(example: Pair, swapped: bool, chars: int) -> Messages:
    first, second = (example.output_b, example.output_a) if swapped else (example.output_a, example.output_b)
    prompt = pairwise_messages(example.task, example.context, clip(example.reference, chars), clip(first, chars),
                               clip(second, chars))[-1]
    winner = example.preferred if not swapped else {"A": "B", "B": "A"}[example.preferred]
    return [prompt, {"role": "assistant", "content": f'{{"winner": "{winner}"}}'}]


def annotator_prompt(pair: Pair, pool: list[Pair], annotator: int, settings: AnnotatorSettings) -> tuple[Messages, bool]:
    """One simulated annotator's messages for ``pair`` and whether it shows the outputs swapped.

    Examples come from ``pool`` (labelled A or B), never from the pair's own item.
    """
    rng = _rng(settings.seed, pair.key, annotator)
    candidates = [p for p in pool if p.item_id != pair.item_id and p.preferred in ("A", "B")]
    examples = rng.sample(candidates, min(settings.shots, len(candidates)))
    messages: Messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for example in examples:
        messages += _example_turns(example, rng.random() < 0.5, settings.example_chars)
    swapped = rng.random() < 0.5
    first, second = (pair.output_b, pair.output_a) if swapped else (pair.output_a, pair.output_b)
    chars = settings.item_chars
    messages.append(pairwise_messages(pair.task, pair.context, clip(pair.reference, chars), clip(first, chars),
                                      clip(second, chars))[-1])
    return messages, swapped


def _oriented(label: str | None, swapped: bool) -> str:
    if label in ("A", "B"):
        return {("A", False): A, ("B", False): B, ("A", True): B, ("B", True): A}[(label, swapped)]
    return "tie" if label == "tie" else "?"


def annotate(judge: Judge, pairs: list[Pair], pool: list[Pair], settings: AnnotatorSettings,
             progress: bool = False) -> list[PairVerdict]:
    """Every pair's K votes, verdict and confidences; all prompts asked in one batch."""
    prompts, swaps = [], []
    for pair in pairs:
        for annotator in range(settings.annotators):
            messages, swapped = annotator_prompt(pair, pool, annotator, settings)
            prompts.append(messages)
            swaps.append(swapped)
    replies = judge.ask_many(prompts, progress=progress)
    verdicts = []
    k = settings.annotators
    for index, pair in enumerate(pairs):
        chunk = replies[index * k : (index + 1) * k]
        votes = tuple(_oriented(parse_pairwise(reply.raw) if not reply.error else None, swapped)
                      for reply, swapped in zip(chunk, swaps[index * k : (index + 1) * k]))
        counts = Counter(v for v in votes if v in (A, B))
        verdict = None
        if counts:
            (top, top_n), *rest = counts.most_common()
            verdict = top if not rest or rest[0][1] < top_n else None  # an even split has no majority
        confidence = counts[verdict] / k if verdict else 0.0
        logprob_confidence = None
        if verdict and all(reply.probabilities for reply in chunk):
            shown = [({A: "A", B: "B"} if not s else {A: "B", B: "A"})[verdict] for s in swaps[index * k : (index + 1) * k]]
            logprob_confidence = sum(reply.probabilities.get(label, 0.0) for reply, label in zip(chunk, shown)) / k
        verdicts.append(PairVerdict(pair.key, votes, verdict, confidence, logprob_confidence))
    return verdicts
