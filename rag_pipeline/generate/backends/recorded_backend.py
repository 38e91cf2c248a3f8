"""The reference study's printed outputs as a model: the notebook's three LLMs enter the graph offline.

Summaries come from ``reference_study/summaries.json`` (by paper), answers from ``questions.json``
(by question); arXiv ids map to paper slugs through the paper registry. The study recorded a
per-paper inference time for summaries (used as ``latency_s``) but only per-paper means for answers
(latency unknown: None). Export caveats (``truncated_in_export``, the study's notes) go into the
row's ``notes``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from rag_pipeline.datasets import load_papers, load_study_questions
from rag_pipeline.generate.backends.base import Backend, GenerationResult
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.settings import data_dir


def _notes(record: dict) -> str:
    parts = []
    truncated = record.get("truncated_in_export")
    if truncated:
        parts.append(f"truncated_in_export={truncated}")
    parts.extend(str(note) for note in record.get("notes") or [])
    return "; ".join(parts)


class RecordedBackend(Backend):
    """Looks up the study's recorded output of ``spec.recorded_name`` for each request."""

    def __init__(self, spec: ModelSpec, root: Path | None = None):
        super().__init__(spec)
        base = Path(root) if root else data_dir()
        study = base / "reference_study"
        if not (study / "summaries.json").is_file() or not (study / "questions.json").is_file():
            raise FileNotFoundError(
                f"model {spec.name!r}: reference study data not found in {study}"
            )
        papers = load_papers(base / "papers.yaml")
        to_paper = {paper.arxiv_id: paper.id for paper in papers if paper.arxiv_id}
        key = spec.recorded_name
        summary_rows = json.loads((study / "summaries.json").read_text(encoding="utf-8"))
        known = {name for row in summary_rows for name in row["models"]}
        if key not in known:
            raise ValueError(
                f"model {spec.name!r}: recorded_name {key!r} is not in the study (has {sorted(known)})"
            )
        self.summaries: dict[str, dict] = {}
        for row in summary_rows:
            record = row["models"].get(key)
            if record is not None and row["arxiv_id"] in to_paper:
                self.summaries[to_paper[row["arxiv_id"]]] = record
        # load_study_questions numbers the questions; the study rows it kept are in the same order.
        questions = load_study_questions(base, papers)
        rows = [
            r
            for r in json.loads((study / "questions.json").read_text(encoding="utf-8"))
            if r["arxiv_id"] in to_paper
        ]
        self.answers: dict[str, dict] = {}
        for question, row in zip(questions, rows, strict=True):
            if question.text != row["question"]:
                raise ValueError(
                    f"reference study questions out of order at {question.question_id!r}"
                )
            if key in row["answers"]:
                self.answers[question.question_id] = row["answers"][key]

    def _one(self, request: GenerationRequest) -> GenerationResult:
        if request.task == "summary":
            record = self.summaries.get(request.item_id)
            text = record.get("summary") if record else None
            latency = record.get("inference_time_s") if record else None
        else:
            record = self.answers.get(request.item_id)
            text = record.get("text") if record else None
            latency = None  # the study printed only per-paper means for answers
        if text is None:
            return GenerationResult(
                error=f"no recorded output for {request.task} {request.item_id!r} "
                f"of {self.spec.recorded_name!r} in the reference study"
            )
        return GenerationResult(output=text.strip(), latency_s=latency, notes=_notes(record))

    def generate(
        self, requests: list[GenerationRequest], progress: bool = True
    ) -> list[GenerationResult]:
        """Recorded outputs in request order; a missing item is a result with its error."""
        return [
            self._one(r)
            for r in tqdm(requests, disable=not progress, desc=f"recorded {self.spec.name}")
        ]
