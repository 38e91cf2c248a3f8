"""Asset checks of the ingest stages (visible in the UI next to their asset)."""

import dagster as dg

from rag_pipeline import contracts as c
from rag_pipeline.defs.checks import checked_partitions, no_partition
from rag_pipeline.defs.partitions import PAPERS
from rag_pipeline.defs.resources import StateResource


@dg.asset_check(asset=c.PAPER_TEXT.name, description="Abstract and conclusion were found (summaries need them).")
def sections_found(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    papers = checked_partitions(context, PAPERS)
    if not papers:
        return no_partition()
    store = state.store()
    missing = {paper: store.read_json(c.PAPER_TEXT.name, paper).get("missing", []) for paper in papers}
    missing = {paper: sections for paper, sections in missing.items() if sections}
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"papers": len(papers), "missing": dg.MetadataValue.json(missing)},
    )


@dg.asset_check(asset=c.PAPER_CHUNKS.name, description="Offsets point at the chunk text and ids are unique.")
def chunk_offsets_consistent(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    papers = checked_partitions(context, PAPERS)
    if not papers:
        return no_partition()
    store = state.store()
    bad, duplicated = [], 0
    for paper in papers:
        text = store.read_text(c.PAPER_TEXT.name, paper)
        chunks = store.read_frame(c.PAPER_CHUNKS.name, paper)
        bad += [row.chunk_id for row in chunks.itertuples() if text[row.start:row.end] != row.text]
        duplicated += int(chunks["chunk_id"].duplicated().sum())
    return dg.AssetCheckResult(
        passed=not bad and duplicated == 0,
        metadata={"papers": len(papers), "bad_offsets": len(bad), "duplicate_ids": duplicated,
                  "first_bad": bad[0] if bad else ""},
    )


checks = [sections_found, chunk_offsets_consistent]
