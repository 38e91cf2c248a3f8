"""Generation stage, one model × paper partition at a time: summaries and answers.

Requests are built from the stored ingest outputs, generated through the content-hash cache with
the process's model pool (one load per model for all its partitions), and stored as one table
per partition.
"""

from __future__ import annotations

import pandas as pd

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactStore, Draft
from rag_pipeline.cache import ContentCache
from rag_pipeline.datasets import questions_for_paper
from rag_pipeline.generate.pool import ModelPool
from rag_pipeline.generate.registry import ModelSpec, models_by_name
from rag_pipeline.generate.requests import answer_requests, summary_requests
from rag_pipeline.generate.runner import run_generation
from rag_pipeline.generate.types import GenerationRequest, rows_to_frame
from rag_pipeline.settings import StatePaths
from rag_pipeline.stages.outcome import StageError, StageOutcome, artifact_metadata, frame_preview, frame_version


def model_spec(model: str) -> ModelSpec:
    """The registry entry of ``model`` (a clear error when it was removed from data/models.yaml)."""
    specs = models_by_name()
    if model not in specs:
        raise StageError(f"model {model!r} is not in data/models.yaml (removed from the registry?)")
    return specs[model]


def needs_ingested_inputs(spec: ModelSpec) -> bool:
    """Recorded models replay the notebook's outputs by item: they read no text and no retrievals."""
    return spec.backend != "recorded"


def summary_requests_for(spec: ModelSpec, paper: str, inputs: Draft) -> list[GenerationRequest]:
    try:
        sections = inputs.read_json(contracts.PAPER_TEXT.name, paper)
    except FileNotFoundError:
        if needs_ingested_inputs(spec):
            raise StageError(f"paper {paper!r}: paper_text is not materialized; materialize the ingest assets first") from None
        sections = {}
    return summary_requests(spec, paper, sections.get("abstract", ""), sections.get("conclusion", ""))


def answer_requests_for(spec: ModelSpec, paper: str, inputs: Draft) -> list[GenerationRequest]:
    try:
        frame = inputs.read_frame(contracts.RETRIEVALS.name, paper)
    except FileNotFoundError:
        if needs_ingested_inputs(spec):
            raise StageError(f"paper {paper!r}: retrievals are not materialized; materialize the ingest assets first") from None
        frame = None
    return answer_requests(spec, paper, questions_for_paper(paper), frame)


REQUEST_BUILDERS = {"summary": summary_requests_for, "answer": answer_requests_for}


def generate_partition(
    task: str,
    model: str,
    paper: str,
    store: ArtifactStore,
    cache: ContentCache,
    pool: ModelPool,
    paths: StatePaths,
) -> StageOutcome:
    """One partition's requests generated through the cache and stored as the task's table."""
    asset = contracts.GENERATION_ASSET_OF_TASK[task]
    spec = model_spec(model)
    if task not in spec.tasks:
        with store.writing(asset.name, model, paper) as out:
            out.write_frame(rows_to_frame([]))
        note = f"model {model!r} does not do the {task} task (tasks: {', '.join(spec.tasks)})"
        return StageOutcome(metadata={"rows": 0, "note": note, **artifact_metadata(out)}, version="not-applicable")
    with store.writing(asset.name, model, paper) as out:
        requests = REQUEST_BUILDERS[task](spec, paper, out)
        rows = run_generation(spec, requests, cache=cache, pool=pool, state=paths)
        frame = rows_to_frame(rows)
        out.write_frame(frame)
    failed = frame[frame["error"] != ""] if not frame.empty else frame
    ok = frame[frame["error"] == ""] if not frame.empty else frame
    return StageOutcome(
        metadata={
            "rows": len(frame),
            "failed": len(failed),
            "cache_hits": int(frame["cache_hit"].sum()) if not frame.empty else 0,
            "mean_latency_s": round(float(ok["latency_s"].dropna().mean()), 3)
            if not ok.empty and ok["latency_s"].notna().any() else 0.0,
            "output_tokens": int(ok["output_tokens"].fillna(0).sum()) if not ok.empty else 0,
            "model": model,
            "backend": spec.backend,
            "preview": frame_preview(frame, ["item_id", "output", "latency_s", "cache_hit", "error"], width=120),
            **artifact_metadata(out),
        },
        version=frame_version(frame, asset.version_columns),
        warnings=[f"{model} × {paper} item {row.item_id}: {row.error}" for row in failed.itertuples()],
    )


def stored_generations(
    store: ArtifactStore | Draft, model: str | None = None, paper: str | None = None, partitions: list | None = None
) -> pd.DataFrame:
    """Generation rows of both tasks: one partition's (``model`` and ``paper``; through a draft, its
    versions are recorded as inputs), those of ``partitions`` or every stored one."""
    frames = []
    for asset in contracts.GENERATION_ASSETS:
        if model is None:
            frames.append(store.read_all_frames(asset.name, partitions=partitions))
        elif store.has_input(asset.name, model, paper) if isinstance(store, Draft) else store.exists(asset.name, model, paper):
            frames.append(store.read_frame(asset.name, model, paper))
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
