"""Walk a score back to exactly what produced it: generation → chunks → text → markdown → PDF.

Every stored version records the versions of the inputs it read (its manifest), so the walk
follows those versions, not whatever is current now: after a re-ingest with other chunking, a
score still shows the chunks its answer was generated from.
"""

from __future__ import annotations

import json

import pandas as pd

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactRef, ArtifactStore, NotMaterialized


class LineageError(LookupError):
    """The id is not in the stored artifacts."""


def _find_row(frame: pd.DataFrame, column: str, value: str) -> dict | None:
    if frame.empty or column not in frame.columns:
        return None
    match = frame[frame[column] == value]
    return match.iloc[0].to_dict() if not match.empty else None


def find_score(store: ArtifactStore, score_id: str) -> tuple[ArtifactRef, dict]:
    """The metric row and the version holding it: current versions first, then older ones."""
    asset = contracts.GENERATION_METRICS.name
    current = {ref for ref in store.current_refs() if ref.asset == asset}
    older = [ref for ref in store.all_refs() if ref.asset == asset and ref not in current]
    for ref in [*sorted(current, key=lambda r: r.label), *older]:
        try:
            row = _find_row(store.read_frame(asset, *ref.keys, version=ref.version), "score_id", score_id)
        except NotMaterialized:
            continue
        if row is not None:
            return ref, row
    raise LineageError(f"no metric row with score_id {score_id!r} in {store.location(asset)}")


def _input(store: ArtifactStore, ref: ArtifactRef, asset: str) -> ArtifactRef | None:
    """The version of ``asset`` that ``ref`` was built from (None when it read none)."""
    for item in store.manifest(ref).get("inputs", []):
        if item["asset"] == asset:
            return ArtifactRef.from_dict(item)
    return None


def _step(store: ArtifactStore, ref: ArtifactRef) -> dict:
    manifest = store.manifest(ref)
    return {**ref.as_dict(), "created_at": manifest.get("created_at"),
            "path": str(store.version_dir(ref.asset, *ref.keys, version=ref.version))}


def explain_score(store: ArtifactStore, score_id: str) -> dict:
    """The lineage of one metric row as a nested dict (raises LineageError when unknown or pruned).

    ``steps`` lists every stored version on the way down (asset, keys, version, path), in order.
    """
    metrics_ref, score = find_score(store, score_id)
    steps = [metrics_ref]
    generation_asset = contracts.GENERATION_ASSET_OF_TASK[score["task"]].name
    generation_ref = _input(store, metrics_ref, generation_asset)
    if generation_ref is None:
        raise LineageError(f"score {score_id!r}: its metrics version {metrics_ref.version} records no {generation_asset} input")
    try:
        generations = store.read_frame(generation_asset, *generation_ref.keys, version=generation_ref.version)
    except NotMaterialized as exc:
        raise LineageError(f"score {score_id!r}: {exc} (removed by gc?)") from exc
    generation = _find_row(generations, "generation_id", score["generation_id"])
    if generation is None:
        raise LineageError(f"generation {score['generation_id']!r} of score {score_id!r} is not in {generation_ref.label}")
    steps.append(generation_ref)
    lineage: dict = {"score": score, "generation": generation}

    text_ref = _input(store, generation_ref, contracts.PAPER_TEXT.name)
    retrievals_ref = _input(store, generation_ref, contracts.RETRIEVALS.name)
    if retrievals_ref is not None:
        steps.append(retrievals_ref)
        retrieved = store.read_frame(contracts.RETRIEVALS.name, *retrievals_ref.keys, version=retrievals_ref.version)
        context_ids = json.loads(generation.get("context_ids") or "[]")
        retrieved = retrieved[(retrieved["question_id"] == generation["item_id"]) & retrieved["chunk_id"].isin(context_ids)]
        lineage["chunks"] = retrieved.drop(columns=["question"], errors="ignore").to_dict("records")
        index_ref = _input(store, retrievals_ref, contracts.PAPER_INDEX.name)
        chunks_ref = _input(store, index_ref, contracts.PAPER_CHUNKS.name) if index_ref else None
        steps += [ref for ref in (index_ref, chunks_ref) if ref is not None]
        if chunks_ref is not None:
            text_ref = _input(store, chunks_ref, contracts.PAPER_TEXT.name)
    if text_ref is not None:
        steps.append(text_ref)
        lineage[contracts.PAPER_TEXT.name] = store.read_json(contracts.PAPER_TEXT.name, *text_ref.keys, version=text_ref.version)
        markdown_ref = _input(store, text_ref, contracts.PAPER_MARKDOWN.name)
        pdf_ref = _input(store, markdown_ref, contracts.PAPER_PDF.name) if markdown_ref else None
        steps += [ref for ref in (markdown_ref, pdf_ref) if ref is not None]
        if pdf_ref is not None:
            pdf = store.read_json(contracts.PAPER_PDF.name, *pdf_ref.keys, version=pdf_ref.version)
            pdf["path"] = store.url_of(contracts.PAPER_PDF.name, *pdf_ref.keys, suffix=".pdf", version=pdf_ref.version)
            lineage[contracts.PAPER_PDF.name] = pdf
    lineage["steps"] = [_step(store, ref) for ref in steps]
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
    if "paper_pdf" in lineage:
        pdf = lineage["paper_pdf"]
        lines.append(f"pdf       {pdf['path']} sha256 {pdf['sha256']} from {pdf['source_url']} ({pdf['n_pages']} pages)")
    lines.append("stored versions (newest step first):")
    for step in lineage.get("steps", []):
        run = step.get("run_id")
        lines.append(
            f"  {step['asset']:<18} {'/'.join(step['keys']) or 'all':<36} {step['version']}"
            + (f"  run {run[:8]} materialization {step['materialization']}" if run else "  (no materialization found)"
               if "run_id" in step else "")
        )
    return "\n".join(lines)
