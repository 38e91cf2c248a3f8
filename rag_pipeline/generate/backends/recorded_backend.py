"""The reference study's printed outputs as a model: the notebook's three LLMs enter the graph offline.

Summaries come from ``reference_study/summaries.json`` (by paper), answers from ``questions.json``
(by question); arXiv ids map to paper slugs through the paper registry. The study recorded a
per-paper inference time for summaries (used as ``latency_s``) but only per-paper means for answers
(used for each answer, and said so in ``notes``). Export caveats (``truncated_in_export``, the
study's notes) go into the row's ``notes``. The data is read by ``rag_pipeline.reference_study``.
"""

from __future__ import annotations

from pathlib import Path

from rag_pipeline.generate.backends.base import (
    Backend,
    BatchCallback,
    GenerationResult,
    generate_item_by_item,
)
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.reference_study import load_study_outputs
from rag_pipeline.settings import data_dir


class RecordedBackend(Backend):
    """Looks up the study's recorded output of ``spec.recorded_name`` for each request."""

    def __init__(self, spec: ModelSpec, root: Path | None = None):
        super().__init__(spec)
        study = (Path(root) if root else data_dir()) / "reference_study"
        if not (study / "summaries.json").is_file() or not (study / "questions.json").is_file():
            raise FileNotFoundError(f"model {spec.name!r}: reference study data not found in {study}")
        outputs = load_study_outputs(study)
        known = sorted(outputs["study_model"].unique())
        if spec.recorded_name not in known:
            raise ValueError(f"model {spec.name!r}: recorded_name {spec.recorded_name!r} is not in the study (has {known})")
        mine = outputs[outputs["study_model"] == spec.recorded_name]
        self.records = {(row.task, row.item_id): row for row in mine.itertuples(index=False)}

    def _one(self, request: GenerationRequest) -> GenerationResult:
        record = self.records.get((request.task, request.item_id))
        if record is None:
            return GenerationResult(
                error=f"no recorded output for {request.task} {request.item_id!r} "
                f"of {self.spec.recorded_name!r} in the reference study"
            )
        return GenerationResult(output=record.output.strip(), latency_s=float(record.latency_s), notes=record.notes)

    def generate(
        self, requests: list[GenerationRequest], progress: bool = True, on_batch: BatchCallback | None = None
    ) -> list[GenerationResult]:
        """Recorded outputs in request order; a missing item is a result with its error."""
        return generate_item_by_item(self, requests, self._one, progress, on_batch, f"recorded {self.spec.name}")
