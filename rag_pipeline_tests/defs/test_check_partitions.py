"""Partitioned checks on a real instance with a two-asset graph: a result per partition also in a
single-run backfill, and `blocked_papers` reading the latest evaluation of each paper."""

import dagster as dg
import pytest

from rag_pipeline.defs.checks import checked_partitions, evaluate_each
from rag_pipeline.defs.runner import blocked_papers

PAPERS = dg.StaticPartitionsDefinition(["p1", "p2", "p3"])
BAD: set[str] = set()


@dg.asset(partitions_def=PAPERS, backfill_policy=dg.BackfillPolicy.single_run())
def text(context) -> None:
    """Stands for paper_text; nothing is stored."""


@dg.asset(partitions_def=PAPERS, deps=[text], backfill_policy=dg.BackfillPolicy.single_run())
def chunks(context) -> None:
    """Downstream of the check."""


@dg.asset_check(asset=text, partitions_def=PAPERS, blocking=True)
def text_ok(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return evaluate_each(context, PAPERS, lambda paper: dg.AssetCheckResult(
        passed=paper not in BAD, description=f"paper {paper!r}: " + ("no abstract" if paper in BAD else "ok")))


DEFS = dg.Definitions(assets=[text, chunks], asset_checks=[text_ok])
GRAPH = [text, chunks, text_ok]
RANGE = {"dagster/asset_partition_range_start": "p1", "dagster/asset_partition_range_end": "p3"}


def _statuses(instance):
    key = dg.AssetCheckKey(dg.AssetKey("text"), "text_ok")
    return {info.partition_key: (info.latest_execution_status.value, info.is_current)
            for info in instance.event_log_storage.get_asset_check_partition_info([key]) if info.partition_key}


@pytest.fixture()
def bad():
    BAD.clear()
    yield BAD
    BAD.clear()


def test_a_single_run_backfill_records_each_partitions_result_and_blocks(bad):
    bad.add("p2")
    with dg.instance_for_test() as instance:
        result = dg.materialize(GRAPH, instance=instance, tags=RANGE, raise_on_error=False)
        assert not result.success  # one paper failed a blocking check: the run's downstream step is skipped
        assert not instance.fetch_materializations(dg.AssetKey("chunks"), limit=1).records
        assert _statuses(instance) == {"p1": ("SUCCEEDED", True), "p2": ("FAILED", True), "p3": ("SUCCEEDED", True)}
        assert blocked_papers(DEFS, instance, ["p1", "p2", "p3"]) == {"p2": "blocked by check text:text_ok: paper 'p2': no abstract"}
        summary = [e.asset_check_evaluation_data for e in result.all_events
                   if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.partition is None]
        assert len(summary) == 1 and summary[0].description == "paper 'p2': no abstract"
        assert summary[0].metadata["failing_partitions"].value == "p2"


def test_a_fixed_paper_is_no_longer_blocked_and_a_single_partition_run_records_its_partition(bad):
    bad.add("p2")
    with dg.instance_for_test() as instance:
        dg.materialize(GRAPH, instance=instance, partition_key="p2", raise_on_error=False)
        assert _statuses(instance) == {"p2": ("FAILED", True)}
        assert set(blocked_papers(DEFS, instance, ["p1", "p2"])) == {"p2"}
        bad.clear()  # the paper was fixed; re-materializing runs the check again
        assert dg.materialize(GRAPH, instance=instance, partition_key="p2").success
        assert _statuses(instance) == {"p2": ("SUCCEEDED", True)}
        assert blocked_papers(DEFS, instance, ["p1", "p2"]) == {}


def test_a_warning_does_not_block():
    @dg.asset_check(asset=text, partitions_def=PAPERS, blocking=True, name="text_warns")
    def text_warns(context):
        return evaluate_each(context, PAPERS, lambda paper: dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, description="odd"))

    with dg.instance_for_test() as instance:
        assert dg.materialize([text, chunks, text_warns], instance=instance, partition_key="p1").success
        assert blocked_papers(dg.Definitions(assets=[text, chunks], asset_checks=[text_warns]), instance, ["p1"]) == {}


def test_an_unpartitioned_check_sees_every_partition_of_a_single_run_backfill():
    @dg.asset_check(asset=text, name="sees_range")
    def sees_range(context):
        keys = checked_partitions(context, PAPERS)
        return dg.AssetCheckResult(passed=keys == ["p1", "p2", "p3"], description=", ".join(keys))

    with dg.instance_for_test() as instance:
        result = dg.materialize([text, sees_range], instance=instance, tags=RANGE)
        (evaluation,) = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert evaluation.passed, evaluation.description
