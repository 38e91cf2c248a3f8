"""Asset checks of the evaluation stages."""

import dagster as dg

from rag_pipeline import contracts as c
from rag_pipeline.defs.checks import checked_partitions, no_partition
from rag_pipeline.defs.partitions import PAPER_MODEL, model_and_paper
from rag_pipeline.defs.resources import StateResource


@dg.asset_check(asset=c.GENERATION_METRICS.name, description="No NaN: every missing value carries its reason.")
def metrics_have_reasons(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    keys = checked_partitions(context, PAPER_MODEL)
    if not keys:
        return no_partition()
    store = state.store()
    rows = unexplained = 0
    for key in keys:
        frame = store.read_frame(c.GENERATION_METRICS.name, *model_and_paper(key))
        if frame.empty:
            continue
        rows += len(frame)
        unexplained += int((frame["value"].isna() & (frame["error"] == "")).sum())
    return dg.AssetCheckResult(
        passed=unexplained == 0, metadata={"partitions": len(keys), "rows": rows, "unexplained_missing": unexplained}
    )


checks = [metrics_have_reasons]
