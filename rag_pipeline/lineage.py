"""Walk a score back to everything that produced it: generation → chunks → text → markdown → PDF."""

from __future__ import annotations

import json

import pandas as pd

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactStore


class LineageError(LookupError):
    """The id is not in the stored artifacts."""


def _find_row(frame: pd.DataFrame, column: str, value: str) -> dict | None:
    if frame.empty or column not in frame.columns:
        return None
    match = frame[frame[column] == value]
    return match.iloc[0].to_dict() if not match.empty else None


def explain_score(store: ArtifactStore, score_id: str) -> dict:
    """The lineage of one metric row as a nested dict (raises LineageError when unknown)."""
    metrics = contracts.GENERATION_METRICS.name
    score = _find_row(store.read_all_frames(metrics), "score_id", score_id)
    if score is None:
        raise LineageError(f"no metric row with score_id {score_id!r} in {store.root / metrics}")
    asset = contracts.GENERATION_ASSET_OF_TASK[score["task"]].name
    generation = _find_row(store.read_frame(asset, score["model"], score["paper_id"]), "generation_id", score["generation_id"])
    if generation is None:
        raise LineageError(f"generation {score['generation_id']!r} of score {score_id!r} is no longer stored")
    paper = score["paper_id"]
    lineage: dict = {"score": score, "generation": generation}
    context_ids = json.loads(generation.get("context_ids") or "[]")
    if context_ids and store.exists(contracts.RETRIEVALS.name, paper):
        retrieved = store.read_frame(contracts.RETRIEVALS.name, paper)
        retrieved = retrieved[(retrieved["question_id"] == generation["item_id"]) & retrieved["chunk_id"].isin(context_ids)]
        lineage["chunks"] = retrieved.drop(columns=["question"], errors="ignore").to_dict("records")
    for name, suffix in ((contracts.PAPER_TEXT.name, ".json"), (contracts.PAPER_PDF.name, ".json")):
        if store.exists(name, paper, suffix=suffix):
            lineage[name] = store.read_json(name, paper)
    for name, suffix in ((contracts.PAPER_TEXT.name, ".md"), (contracts.PAPER_MARKDOWN.name, ".md")):
        if store.exists(name, paper, suffix=suffix):
            lineage.setdefault("files", {})[name] = str(store.path(name, paper, suffix=suffix))
    return lineage


def format_lineage(lineage: dict) -> str:
    """A human-readable walk from the score down to the PDF."""
    score, generation = lineage["score"], lineage["generation"]
    lines = [
        f"score     {score['score_id']}: {score['metric']} = {score['value']}" + (f" (failed: {score['error']})" if score.get("error") else ""),
        f"  signature {score['signature']}",
        f"generation {generation['generation_id']}: model {generation['model']} ({generation['backend']}, revision {generation.get('model_revision') or '-'})",
        f"  task {generation['task']}, item {generation['item_id']}, prompt {generation['prompt_version']} / {generation['prompt_hash']}",
        f"  decoding {generation['decoding']}, latency {generation.get('latency_s')} s, tokens {generation.get('input_tokens')} → {generation.get('output_tokens')}, cache hit {generation.get('cache_hit')}",
        f"  output: {str(generation['output'])[:300]}",
    ]
    for chunk in lineage.get("chunks", []):
        lines.append(
            f"chunk     {chunk['chunk_id']} (rank {chunk['final_rank']}, vector {chunk['vector_score']:.4f}, rerank {chunk.get('rerank_score')}): {str(chunk['text'])[:160]!r}"
        )
    if "paper_text" in lineage:
        sections = lineage["paper_text"]
        lines.append(f"text      sections missing: {', '.join(sections.get('missing', [])) or 'none'}; references cut at {sections.get('references_heading')!r}")
    for name, path in lineage.get("files", {}).items():
        lines.append(f"file      {name}: {path}")
    if "paper_pdf" in lineage:
        pdf = lineage["paper_pdf"]
        lines.append(f"pdf       {pdf['path']} sha256 {pdf['sha256']} from {pdf['source_url']} ({pdf['n_pages']} pages)")
    return "\n".join(lines)
