"""Asset checks: properties every materialization must keep, visible in the UI."""


import dagster as dg

from rag_pipeline.defs.evaluation_assets import generation_metrics
from rag_pipeline.defs.ingest_assets import paper_chunks, paper_text
from rag_pipeline.defs.resources import StateResource


@dg.asset_check(asset=paper_text, description="Abstract and conclusion were found (summaries need them).")
def sections_found(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    # Checks on partitioned assets run for the materialized partition.
    paper = context.run.tags.get("dagster/partition")
    if paper is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no partition in this run"})
    sections = state.store().read_json("paper_text", paper)
    missing = sections.get("missing", [])
    return dg.AssetCheckResult(
        passed=not missing, severity=dg.AssetCheckSeverity.WARN, metadata={"missing": ", ".join(missing) or "none"}
    )


@dg.asset_check(asset=paper_chunks, description="Offsets point at the chunk text and ids are unique.")
def chunk_offsets_consistent(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    paper = context.run.tags.get("dagster/partition")
    if paper is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no partition in this run"})
    store = state.store()
    text = store.read_text("paper_text", paper)
    chunks = store.read_frame("paper_chunks", paper)
    bad = [row.chunk_id for row in chunks.itertuples() if text[row.start:row.end] != row.text]
    duplicated = int(chunks["chunk_id"].duplicated().sum())
    return dg.AssetCheckResult(
        passed=not bad and duplicated == 0,
        metadata={"bad_offsets": len(bad), "duplicate_ids": duplicated, "first_bad": bad[0] if bad else ""},
    )


@dg.asset_check(asset=generation_metrics, description="No NaN: every missing value carries its reason.")
def metrics_have_reasons(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    tag = context.run.tags.get("dagster/partition")
    if tag is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no partition in this run"})
    keys = dict(part.split("=", 1) for part in tag.split(",")) if "=" in tag else None
    if keys is None:
        model, paper = tag.split("|")
    else:
        model, paper = keys["model"], keys["paper"]
    frame = state.store().read_frame("generation_metrics", model, paper)
    if frame.empty:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0})
    unexplained = frame["value"].isna() & (frame["error"] == "")
    return dg.AssetCheckResult(passed=not bool(unexplained.any()), metadata={"rows": len(frame), "unexplained_missing": int(unexplained.sum())})


asset_checks = [sections_found, chunk_offsets_consistent, metrics_have_reasons]
