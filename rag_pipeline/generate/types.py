"""Generation requests (what to ask a model) and generation rows (what it answered).

A row has the ``generations`` columns of ``rag_pipeline.contracts``; :func:`rows_to_frame` turns
rows into the DataFrame the ``summaries`` and ``answers`` assets store. The requests of a paper are
built in ``rag_pipeline.generate.requests``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from rag_pipeline.contracts import GENERATION_COLUMNS

if TYPE_CHECKING:
    from rag_pipeline.generate.registry import ModelSpec



@dataclass
class GenerationRequest:
    """One item to generate: a paper summary or an answer to one question.

    ``context`` carries what non-LLM backends need (``abstract``/``conclusion`` for summaries;
    ``question``, ``chunks`` and ``chunk_ids`` for answers). ``error`` set at build time means the
    item cannot be generated (e.g. no retrieved context); it becomes a row with that reason.
    """

    task: str
    paper_id: str
    item_id: str
    messages: list[dict]
    context_ids: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    error: str = ""
    # A judge's question: the backend returns the answer label's probabilities where it can, and
    # stops after ``max_new_tokens`` (a verdict is a few tokens; None: the model's own limit).
    want_logprobs: bool = False
    max_new_tokens: int | None = None


@dataclass
class GenerationRow:
    """One row of the ``generations`` table (``summaries`` / ``answers`` assets)."""

    generation_id: str
    task: str
    paper_id: str
    item_id: str
    model: str
    backend: str
    model_revision: str
    prompt_version: str
    prompt_hash: str
    prompt: str
    decoding: str  # JSON
    context_ids: str  # JSON list of chunk ids
    output: str
    thinking: str
    latency_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cache_hit: bool
    error: str
    created_at: str
    notes: str = ""

    def to_dict(self) -> dict:
        """The row as a plain dict (column name → value)."""
        return asdict(self)



# Nullable dtypes: a value that was not measured is <NA> (Parquet null), never NaN.
_DTYPES = {
    "latency_s": "Float64",
    "input_tokens": "Int64",
    "output_tokens": "Int64",
    "cache_hit": "boolean",
}


def rows_to_frame(rows: list[GenerationRow]) -> pd.DataFrame:
    """Rows as a DataFrame with the ``generations`` columns in order and nullable numeric dtypes."""
    frame = pd.DataFrame([row.to_dict() for row in rows], columns=list(GENERATION_COLUMNS))
    for column, dtype in _DTYPES.items():
        frame[column] = frame[column].astype(dtype)
    for column in GENERATION_COLUMNS:
        if column not in _DTYPES:
            frame[column] = frame[column].astype("object")
    return frame


def decoding_json(spec: ModelSpec, task: str) -> str:
    """The decoding settings of a row as JSON (parameters plus max_new_tokens and thinking mode)."""
    settings: dict[str, Any] = {k: v for k, v in spec.decoding_for(task).items() if v is not None}
    if spec.backend in ("transformers", "openai"):
        settings["max_new_tokens"] = spec.max_new_tokens
        if spec.enable_thinking is not None:
            settings["enable_thinking"] = spec.enable_thinking
    if spec.backend == "extractive":
        settings.update(spec.extractive)
    return json.dumps(settings, ensure_ascii=False, sort_keys=True)
