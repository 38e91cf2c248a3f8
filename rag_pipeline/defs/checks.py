"""Asset checks: properties every materialization must keep, visible in the UI.

A check runs once per run, so it covers every partition the run materialized: one for an ordinary
run, a whole range for a single-run backfill.
"""

import dagster as dg

from rag_pipeline.defs.evaluation_assets import generation_metrics
from rag_pipeline.defs.ingest_assets import paper_chunks, paper_text
from rag_pipeline.defs.partitions import PAPER_MODEL, PAPERS, paper_and_model
from rag_pipeline.defs.resources import StateResource


def checked_partitions(context: dg.AssetCheckExecutionContext, partitions_def) -> list[str]:
    """The partition keys the run materialized (from its tags)."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return list(partitions_def.get_partition_keys_in_range(
            dg.PartitionKeyRange(start, end), dynamic_partitions_store=context.instance
        ))
    return []


def no_partition() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"note": "no partition in this run"})


@dg.asset_check(asset=paper_text, description="Abstract and conclusion were found (summaries need them).")
def sections_found(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    papers = checked_partitions(context, PAPERS)
    if not papers:
        return no_partition()
    store = state.store()
    missing = {paper: store.read_json("paper_text", paper).get("missing", []) for paper in papers}
    missing = {paper: sections for paper, sections in missing.items() if sections}
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"papers": len(papers), "missing": dg.MetadataValue.json(missing)},
    )


@dg.asset_check(asset=paper_chunks, description="Offsets point at the chunk text and ids are unique.")
def chunk_offsets_consistent(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    papers = checked_partitions(context, PAPERS)
    if not papers:
        return no_partition()
    store = state.store()
    bad, duplicated = [], 0
    for paper in papers:
        text = store.read_text("paper_text", paper)
        chunks = store.read_frame("paper_chunks", paper)
        bad += [row.chunk_id for row in chunks.itertuples() if text[row.start:row.end] != row.text]
        duplicated += int(chunks["chunk_id"].duplicated().sum())
    return dg.AssetCheckResult(
        passed=not bad and duplicated == 0,
        metadata={"papers": len(papers), "bad_offsets": len(bad), "duplicate_ids": duplicated,
                  "first_bad": bad[0] if bad else ""},
    )


@dg.asset_check(asset=generation_metrics, description="No NaN: every missing value carries its reason.")
def metrics_have_reasons(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    keys = checked_partitions(context, PAPER_MODEL)
    if not keys:
        return no_partition()
    store = state.store()
    rows = unexplained = 0
    for key in keys:
        paper, model = paper_and_model(key)
        frame = store.read_frame("generation_metrics", model, paper)
        if frame.empty:
            continue
        rows += len(frame)
        unexplained += int((frame["value"].isna() & (frame["error"] == "")).sum())
    return dg.AssetCheckResult(
        passed=unexplained == 0, metadata={"partitions": len(keys), "rows": rows, "unexplained_missing": unexplained}
    )


asset_checks = [sections_found, chunk_offsets_consistent, metrics_have_reasons]
