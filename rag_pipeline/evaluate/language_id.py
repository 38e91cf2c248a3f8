"""Which language a generated text is in: py3langid's naive Bayes identifier over a fixed candidate set.

The ``cyrillic_share`` metric cannot tell Russian from Ukrainian, Bulgarian or any other language
written in Cyrillic; a language identifier can. py3langid (a maintained fork of langid.py) ships its
model inside the wheel, runs offline on the CPU and needs only numpy.

Candidates. langid.py knows about 140 labels; asked to choose among all of them, short or
formula-heavy scientific text now and then lands on a rare label (``la``, ``zxx``, ``sr`` for a
two-word Russian reply). The question we ask is narrower: *is this the expected language, or the
one a model drifted into?* So the identifier chooses among

- the languages written in Cyrillic (``CYRILLIC_LANGUAGES``): the ones a Cyrillic-share test lets
  through, and the ones a Russian prompt most plausibly drifts to (Ukrainian, Belarusian,
  Bulgarian, Macedonian, Serbian, Kazakh, Kyrgyz, Mongolian, Tajik, Tatar, Bashkir);
- the languages an LLM falls back to (``FALLBACK_LANGUAGES``): English above all (the papers are
  English, the 0.5B model often answers in it), Chinese (Qwen models), Japanese, Korean and the
  large European languages;
- and the expected language itself, whatever it is.

A text too short to identify reliably (fewer than ``MIN_LETTERS`` letters, e.g. "Да.") or one the
identifier is unsure about (top probability below ``MIN_CONFIDENCE``) is ``und``: it is counted
but left out of the share, so a terse correct answer is not called foreign.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

CYRILLIC_LANGUAGES: tuple[str, ...] = ("ru", "uk", "be", "bg", "mk", "sr", "kk", "ky", "mn", "tg", "tt", "ba")
FALLBACK_LANGUAGES: tuple[str, ...] = ("en", "zh", "ja", "ko", "de", "fr", "es", "it", "pt")
CANDIDATE_LANGUAGES: tuple[str, ...] = CYRILLIC_LANGUAGES + FALLBACK_LANGUAGES
UNDETERMINED = "und"
MIN_LETTERS = 20
MIN_CONFIDENCE = 0.5
IDENTIFIER_NAME = "py3langid"


@dataclass(frozen=True)
class LanguageGuess:
    """The identified language of one text (``und`` when too short or unsure) and its probability."""

    language: str
    confidence: float


@dataclass(frozen=True)
class LanguageReport:
    """Languages of a set of texts against the expected one.

    ``share`` is the expected language's share of the *identified* texts (``und`` left out), or
    None when no text could be identified. ``offending`` lists (item id, language) of the texts
    identified as another language, in input order.
    """

    expected: str
    counts: dict[str, int]
    n_texts: int
    n_identified: int
    n_expected: int
    offending: list[tuple[str, str]] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        return self.n_expected / self.n_identified if self.n_identified else None

    def passes(self, min_share: float) -> bool:
        """True when the expected language's share reaches ``min_share`` (vacuously, with nothing identified)."""
        return self.share is None or self.share >= min_share


def candidates_for(expected: str) -> tuple[str, ...]:
    """The candidate set for ``expected``: the fixed candidates plus ``expected`` itself."""
    return CANDIDATE_LANGUAGES if expected in CANDIDATE_LANGUAGES else (expected, *CANDIDATE_LANGUAGES)


def known_languages() -> list[str]:
    """Every label the shipped model can output."""
    return list(_full_identifier().labels)


@functools.lru_cache(maxsize=1)
def _full_identifier():
    # Imported here: loading the model takes seconds, and only the language check needs it.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@functools.lru_cache(maxsize=8)
def _identifier(candidates: tuple[str, ...]):
    full = _full_identifier()
    unknown = sorted(set(candidates) - set(full.labels))
    if unknown:
        raise ValueError(f"language(s) {unknown} unknown to {IDENTIFIER_NAME}; it knows {sorted(full.labels)}")
    # A shallow copy shares the loaded model; set_languages rebinds (never mutates) the copy's arrays.
    identifier = copy.copy(full)
    identifier.set_languages(list(candidates))
    return identifier


def identify_language(text: str, expected: str = "ru") -> LanguageGuess:
    """The language of ``text`` among ``candidates_for(expected)``; ``und`` when too short or unsure."""
    letters = sum(1 for char in text or "" if char.isalpha())
    if letters < MIN_LETTERS:
        return LanguageGuess(UNDETERMINED, 0.0)
    language, confidence = _identifier(candidates_for(expected)).classify(text)
    if confidence < MIN_CONFIDENCE:
        return LanguageGuess(UNDETERMINED, float(confidence))
    return LanguageGuess(str(language), float(confidence))


def language_report(texts: Iterable[tuple[str, str]], expected: str = "ru") -> LanguageReport:
    """Identify every ``(item_id, text)`` and count languages against ``expected``."""
    counts: Counter[str] = Counter()
    offending = []
    n_texts = 0
    for item_id, text in texts:
        n_texts += 1
        language = identify_language(text, expected).language
        counts[language] += 1
        if language not in (expected, UNDETERMINED):
            offending.append((str(item_id), language))
    n_identified = n_texts - counts[UNDETERMINED]
    return LanguageReport(
        expected=expected,
        counts=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        n_texts=n_texts,
        n_identified=n_identified,
        n_expected=counts[expected],
        offending=offending,
    )


def identifier_signature(expected: str) -> dict:
    """What reproduces a report: the identifier, its version, candidates and thresholds."""
    from importlib.metadata import version

    return {
        "identifier": IDENTIFIER_NAME,
        "version": version("py3langid"),
        "expected": expected,
        "candidates": list(candidates_for(expected)),
        "min_letters": MIN_LETTERS,
        "min_confidence": MIN_CONFIDENCE,
    }
