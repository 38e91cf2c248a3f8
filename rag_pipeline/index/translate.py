"""Query translation for cross-language retrieval: a question asked in another language than the
paper's is translated into the paper's language by a registry LLM before retrieval.

Languages come from py3langid (:mod:`rag_pipeline.evaluate.language_id`): the paper's from its
chunk text, each question's from its text. A question in the paper's language, or one whose
language cannot be told (``und``), is not translated. The translations are ordinary generations
(task ``translate``) run through :func:`rag_pipeline.generate.runner.run_generation`, so they are
cached by content hash (model identity + prompt) like every summary and answer: the model is
loaded only when some question misses the cache. The translation spec is the registry entry with
``max_new_tokens`` set to ``retrieval.translate_max_new_tokens`` (a translation is one line; the
cap bounds a model that runs on), which is part of its identity and therefore of the cache key.

The output is cleaned to its first non-empty line, without quotes or a ``Translation:`` label; a
failed or empty generation leaves the question untranslated (recorded as an error, retried on the
next run since failures are not cached).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from rag_pipeline.config import RetrievalConfig
from rag_pipeline.datasets import Question

TRANSLATION_TASK = "translate"
TRANSLATION_PROMPT_VERSION = "translate-query/v1"
LANGUAGE_NAMES = {
    "en": "English", "ru": "Russian", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "uk": "Ukrainian",
    "be": "Belarusian", "bg": "Bulgarian", "kk": "Kazakh",
}
# Enough text to identify a paper's language; more only costs time.
PAPER_SAMPLE_CHARS = 20_000
_LABEL = re.compile(r"^\s*(?:english\s+)?(?:translation|перевод)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"'«»“”„`"


def text_language(text: str, expected: str) -> str:
    """The ISO 639-1 code of ``text`` (py3langid over its fixed candidates plus ``expected``), or ``und``."""
    from rag_pipeline.evaluate.language_id import identify_language

    return identify_language(text, expected=expected).language


def paper_language(chunks: pd.DataFrame) -> str:
    """The language of a paper, from the first ``PAPER_SAMPLE_CHARS`` characters of its chunk text."""
    sample = "\n".join(str(text) for text in chunks["text"])[:PAPER_SAMPLE_CHARS]
    return text_language(sample, expected="en")


def translation_messages(question: str, source: str, target: str) -> list[dict]:
    """The chat messages asking for a one-line translation of a search question."""
    source_name = LANGUAGE_NAMES.get(source, source)
    target_name = LANGUAGE_NAMES.get(target, target)
    return [
        {
            "role": "system",
            "content": (
                f"You translate search queries about scientific papers from {source_name} into {target_name}. "
                "Keep numbers, names, formulas and technical terms as they are. "
                f"Reply with the {target_name} translation only, on one line."
            ),
        },
        {"role": "user", "content": question},
    ]


def clean_translation(output: str) -> str:
    """The translation in a model's reply: its first non-empty line, without a label or quotes."""
    for line in (output or "").splitlines():
        line = _LABEL.sub("", line).strip().strip(_QUOTES).strip()
        if line:
            return " ".join(line.split())
    return ""


@dataclass
class Translations:
    """The questions of one paper that were translated, and what happened to the others.

    ``queries``: question_id → translation (only translated questions). ``languages``: question_id
    → detected language. ``errors``: question_id → why a question that needed a translation has
    none. ``cache_hits`` / ``generated``: how many translations came from the cache / the model;
    ``seconds``: the generation latency of the ones generated now; ``latency_s``: question_id →
    the latency measured when its translation was generated (a cache hit keeps it).
    """

    paper_language: str
    model: str | None = None
    queries: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    cache_hits: int = 0
    generated: int = 0
    seconds: float = 0.0
    latency_s: dict[str, float] = field(default_factory=dict)

    def signature(self, retrieval: RetrievalConfig, spec=None) -> dict:
        """What reproduces the translations: the model's identity, the prompt version, where used."""
        return {
            "model": retrieval.translate_with,
            "identity": spec.identity() if spec is not None else None,
            "prompt": TRANSLATION_PROMPT_VERSION,
            "max_new_tokens": retrieval.translate_max_new_tokens,
            "used_for": retrieval.translate_for,
            "paper_language": self.paper_language,
        }


def translation_spec(retrieval: RetrievalConfig):
    """The registry entry of ``retrieval.translate_with`` with the translation's token cap."""
    from rag_pipeline.generate.registry import get_model

    spec = get_model(retrieval.translate_with)
    return spec.replace(max_new_tokens=retrieval.translate_max_new_tokens)


def translate_questions(
    questions: Sequence[Question],
    chunks: pd.DataFrame,
    retrieval: RetrievalConfig,
    *,
    cache,
    pool=None,
    backend=None,
    state=None,
    spec=None,
    progress: bool = False,
) -> Translations:
    """Translate the questions of one paper whose language differs from the paper's.

    Nothing is translated (and no model loaded) when ``retrieval`` uses no translation. Otherwise
    the requests go through ``run_generation`` with ``cache`` (a :class:`ContentCache`) and
    ``pool`` or ``backend`` as for any generation; ``spec`` overrides the registry look-up
    (tests, benchmarks).
    """
    from rag_pipeline.generate.runner import run_generation
    from rag_pipeline.generate.types import GenerationRequest

    language = paper_language(chunks) if retrieval.uses_translation and len(chunks) else "und"
    result = Translations(paper_language=language, model=retrieval.translate_with)
    if not retrieval.uses_translation or language == "und":
        return result
    requests = []
    for question in questions:
        asked = text_language(question.text, expected=language)
        result.languages[question.question_id] = asked
        if asked not in ("und", language):
            requests.append(
                GenerationRequest(
                    task=TRANSLATION_TASK,
                    paper_id=question.paper_id,
                    item_id=question.question_id,
                    messages=translation_messages(question.text, asked, language),
                )
            )
    if not requests:
        return result
    spec = spec or translation_spec(retrieval)
    rows = run_generation(spec, requests, cache=cache, pool=pool, backend=backend, state=state, progress=progress)
    for row in rows:
        if row.error:
            result.errors[row.item_id] = row.error
            continue
        translation = clean_translation(row.output)
        if not translation:
            result.errors[row.item_id] = f"no translation in the model's reply {row.output[:80]!r}"
            continue
        result.queries[row.item_id] = translation
        if row.latency_s is not None:
            result.latency_s[row.item_id] = float(row.latency_s)
        if row.cache_hit:
            result.cache_hits += 1
        else:
            result.generated += 1
            result.seconds += float(row.latency_s or 0.0)
    return result
