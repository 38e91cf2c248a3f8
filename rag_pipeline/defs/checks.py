"""What every asset check shares: which partitions the checked run materialized, and what keeps
work downstream of a failed blocking check from starting in a later run.

A check runs once per run, so it covers every partition the run materialized: one for an ordinary
run, a whole range for a single-run backfill. (A `materialize_each` asset yields no step output in a
range run, so Dagster skips its checks there; they run with its single-partition runs.) The partitioned checks (``partitions_def`` set) record
their result against the run's partition, so the UI shows it per paper or per model × paper. The
checks themselves live with their domain (``defs/ingest/checks.py``, ``defs/evaluation/checks.py``).

Blocking checks. Dagster skips the steps downstream of a failed blocking check *in the same run*
only. Ingestion and generation run separately (the automation sensor requests them in different
ticks; the CLI's ``run_pipeline`` in different runs), so ``blocking_check_failed_upstream()`` is the
automation condition that keeps an asset partition from being requested while a blocking check of
an upstream partition (the same paper) failed on its latest materialization, and
``rag_pipeline.defs.runner.blocked_papers`` tells the CLI which papers to hold back and why.
"""

from collections.abc import Callable

import dagster as dg


def checked_partitions(context: dg.AssetCheckExecutionContext, partitions_def) -> list[str]:
    """The partition keys the run materialized (from its tags)."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        # Dynamic partitions are read from the instance (the loading context replaced a keyword argument).
        from dagster._core.definitions.partitions.context import partition_loading_context

        with partition_loading_context(dynamic_partitions_store=context.instance):
            return list(partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))
    return []


def run_partitions_of_check(context: dg.AssetCheckExecutionContext, partitions_def) -> list[str]:
    """The partition the check evaluates (a partitioned check in an ordinary run), else every
    partition the run materialized (a single-run backfill)."""
    if context.has_partition_key:
        return [context.partition_key]
    if context.has_partition_key_range:
        return list(context.partition_keys)
    return checked_partitions(context, partitions_def)


def evaluate_each(
    context: dg.AssetCheckExecutionContext, partitions_def, evaluate_one: Callable[[str], dg.AssetCheckResult]
) -> dg.AssetCheckResult:
    """A partitioned check's result: ``evaluate_one(key)`` for each partition of the run.

    An ordinary run has one partition, and its result is the check's. A single-run backfill (a
    range of partitions) gets no partition on the result a check returns, so each partition's
    result is logged as that partition's own evaluation (against its latest materialization, as
    Dagster does for one partition) and the returned result sums them up: the UI, the automation
    conditions and ``runner.blocked_papers`` see every partition's status either way.
    """
    keys = run_partitions_of_check(context, partitions_def)
    if not keys:
        return no_partition()
    results = {key: evaluate_one(key) for key in keys}
    if context.has_partition_key:
        return results[keys[0]]
    (spec,) = context.check_specs
    for key, result in results.items():
        context.op_execution_context.log_event(_partition_evaluation(context, spec, key, result))
    failing = {key: result for key, result in results.items() if not result.passed}
    severity = (dg.AssetCheckSeverity.ERROR if any(r.severity == dg.AssetCheckSeverity.ERROR for r in failing.values())
                else dg.AssetCheckSeverity.WARN)
    return dg.AssetCheckResult(
        passed=not failing,
        severity=severity,
        description="; ".join(result.description or key for key, result in failing.items())
        or f"all {len(results)} partitions passed",
        metadata={"partitions": len(results), "failing_partitions": ", ".join(failing),
                  "per_partition": dg.MetadataValue.json({key: result.description for key, result in results.items()})},
    )


def _partition_evaluation(context, spec: dg.AssetCheckSpec, key: str, result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # not exported at the top level
        AssetCheckEvaluationTargetMaterializationData,
    )

    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=spec.asset_key, asset_partitions=[key]), limit=1
    ).records
    target = (AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp) if records else None)
    return dg.AssetCheckEvaluation(
        asset_key=spec.asset_key, check_name=spec.name, passed=result.passed, metadata=result.metadata,
        target_materialization_data=target, severity=result.severity, description=result.description,
        blocking=spec.blocking, partition=key,
    )


# Dependencies from the farthest asset that uses the condition back to a checked asset: five from
# generation_metrics (→ answers → retrievals → paper_index → paper_chunks → paper_text), one spare.
UPSTREAM_DEPTH = 6


def blocking_check_failed_upstream(depth: int = UPSTREAM_DEPTH) -> dg.AutomationCondition:
    """True for an asset partition when a blocking check of one of its upstream partitions, up to
    ``depth`` dependencies away, failed on that partition's latest materialization.

    With the partition mappings of the graph, "upstream" of ``answers`` for ``model|paper`` is the
    ``paper`` partition of ``retrievals``, ``paper_index``, ``paper_chunks`` and ``paper_text``: a
    failed check of one paper holds back that paper's generation only. A re-materialization of the
    checked partition clears the failure (Dagster's check status follows the latest materialization).
    """
    failed_here = dg.AutomationCondition.any_checks_match(
        dg.AutomationCondition.check_failed(), blocking_only=True
    ).with_label("blocking_check_failed")
    upstream = failed_here
    for _ in range(depth - 1):
        upstream = failed_here | dg.AutomationCondition.any_deps_match(upstream)
    return dg.AutomationCondition.any_deps_match(upstream).with_label("blocking_check_failed_upstream")


def no_partition() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"note": "no partition in this run"})
