"""When assets re-run on their own: input changes, the nightly retry, and the registry sync."""


import dagster as dg

from rag_pipeline.defs.checks import blocking_check_failed_upstream
from rag_pipeline.defs.inputs.assets import observe_changed_inputs
from rag_pipeline.defs.partitions import MODELS, PAPERS, partition_changes

# Once a night the automation retries partitions whose latest run failed (an OOM, an API outage, a
# killed run, weights copied in since): without it they would wait for their next input change.
# Partitions never attempted (a hub model on a machine without the hub) are not started by it.
NIGHTLY_RETRY_CRON = "0 3 * * *"
NIGHTLY_RETRY_TIMEZONE = "UTC"


def nightly_retry() -> dg.AutomationCondition:
    """After the nightly cron tick: the partition's latest run failed."""
    return (
        dg.AutomationCondition.cron_tick_passed(NIGHTLY_RETRY_CRON, NIGHTLY_RETRY_TIMEZONE)
        & dg.AutomationCondition.execution_failed()
    ).with_label("nightly_retry")


def dep_requested_for_the_same_run() -> dg.AutomationCondition:
    """True when a dependency is requested in this tick in a way that puts it in the same run.

    The generation and evaluation assets materialize a range of partitions in one run (a single-run
    backfill), reporting one materialization per partition and no step output; Dagster skips every
    step downstream of them *in that run*. (Dagster's ``will_be_requested`` counts only requests
    that can share the run; a dependency with other partitions runs first in the same backfill.)
    """
    return dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested()).with_label(
        "dep_requested_for_the_same_run")


def on_input_change(all_inputs_required: bool = True, own_run_after_deps: bool = False) -> dg.AutomationCondition:
    """Run when a partition is newly missing, an input's *data version* changed, or the code changed;
    and, after the nightly tick, when its last run failed (``nightly_retry``).

    Unlike `AutomationCondition.eager()`, a re-materialized input whose content hash is unchanged
    does not trigger this, so expensive generation re-runs only on real changes.
    `all_inputs_required=False` is for assets that read whatever their many inputs hold (the judge
    over all models of a paper, the leaderboard): offline, most model × paper partitions never
    exist, and waiting for all of them would block these assets for good.
    `own_run_after_deps=True` is for an asset with the partitions of a single-run backfill asset it
    reads: it is requested in a later tick, in its own run, once that dependency is written (the
    trigger is kept until then by ``since_last_handled``).
    """
    became_stale = (
        dg.AutomationCondition.newly_missing()
        | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
        | dg.AutomationCondition.code_version_changed()
    ).since_last_handled()
    ready = ~dg.AutomationCondition.any_deps_in_progress() & ~dg.AutomationCondition.in_progress()
    if all_inputs_required:
        ready = ready & ~dg.AutomationCondition.any_deps_missing() & ~blocking_check_failed_upstream()
    if own_run_after_deps:
        ready = ready & ~dep_requested_for_the_same_run()
    label = "on_input_change" if all_inputs_required else "on_any_input_change"
    return ((became_stale | nightly_retry()) & ready).with_label(label)


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def registry_sensor(context: dg.SensorEvaluationContext):
    """Keep the `papers` and `models` partitions in sync with data/papers.yaml and data/models.yaml,
    and record a new data version for every input (registry entry, pipeline.yaml section) that changed.

    A newly registered model's partitions become 'newly missing', so the automation conditions
    generate and score it on its own; ingestion and the index are untouched. An edited input makes
    exactly the partitions that read it stale, and the automation re-runs those.
    """
    changes = partition_changes(context.instance)
    removing = any(change["removed"] for change in changes.values())
    # A removal is applied alone; the inputs (the rosters) are observed on the next tick. In the tick
    # that deletes a partition the automation may still request it, and Dagster fails a whole
    # backfill that targets a deleted partition: the judge's and leaderboard's re-run must not be in it.
    observations = [] if removing else observe_changed_inputs(
        context.instance, {name: change["added"] for name, change in changes.items()})
    requests = []
    for definition in (PAPERS, MODELS):
        change = changes[definition.name]
        for error in change["invalid"]:
            context.log.warning(f"skipped registry entry (its partition is kept): {error}")
        if change["added"]:
            requests.append(definition.build_add_request(change["added"]))
        for key in change["removed"]:
            requests.append(definition.build_delete_request([key]))
    if not requests and not observations:
        return dg.SkipReason("registries, partitions and input versions agree")
    for observation in observations:
        context.log.info(f"input changed: {observation.asset_key.to_user_string()} {observation.partition or ''}")
    return dg.SensorResult(dynamic_partitions_requests=requests, asset_events=observations)


# Declared here so the automation runs by default: Dagster's implicit default sensor starts stopped.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all() | dg.AssetSelection.all_asset_checks(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition (on_input_change) and requests the runs.",
)
