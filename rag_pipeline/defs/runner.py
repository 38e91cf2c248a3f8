"""Materialize selections of the asset graph on a real Dagster instance: in-process, or through the
celery executor when $RAG_PIPELINE_EXECUTOR=celery (rag_pipeline.defs.executors).

Used by `rag-pipeline demo` and the tests; the UI does the same through its launchpad. A failing
partition is reported and the others carry on.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from tqdm import tqdm

from rag_pipeline import contracts
from rag_pipeline.defs import runs
from rag_pipeline.defs.executors import (
    CELERY,
    CPU_QUEUE,
    EXECUTOR_ENV,
    QUEUE_TAG,
    ExecutorConfigError,
    executor_choice,
    reconstructable_asset_job,
)
from rag_pipeline.defs.inputs.assets import record_observations
from rag_pipeline.defs.instance import (
    POSTGRES_URL_ENV,
    InstanceConfigError,
    configured_storage,
    driver_from_environment,
    storage_choice,
    validate_instance_yaml,
    with_storage,
)
from rag_pipeline.defs.partitions import model_paper_key, sync_registry_partitions
from rag_pipeline.defs.staleness import stale_or_missing, stale_selections
from rag_pipeline.settings import state_paths

INSTANCE_CONFIG = """\
# Written by `rag-pipeline init`. Every pool runs one step at a time across all runs:
# `gpu` (generation and judging share one accelerator) and `chroma` (one writer per directory).
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""
# Dagster's run monitoring (in the daemon, `make ui`): frees the pool slots of runs that ended without
# freeing them and fails runs stuck starting or canceling. Runs whose process died are cleaned up by
# the next run (rag_pipeline.defs.runs), with or without the daemon.
RUN_MONITORING_CONFIG = """\
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 60
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""
INSTANCE_CONFIG += RUN_MONITORING_CONFIG


def instance_home() -> Path:
    """DAGSTER_HOME, defaulting to <state>/dagster; created with the instance config if new (its
    storage PostgreSQL when $RAG_PIPELINE_POSTGRES_URL is set, else sqlite: rag_pipeline.defs.instance)."""
    home = Path(os.environ.get("DAGSTER_HOME") or state_paths().dagster_home)
    driver_from_environment()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(with_storage(INSTANCE_CONFIG, storage_choice()), encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def configure_storage(postgres: str | None = None, sqlite: bool = False) -> tuple[Path, dict | None, str | None]:
    """`rag-pipeline init`: set the instance's storage in DAGSTER_HOME/dagster.yaml (other settings
    kept) to PostgreSQL at `postgres` (a URL without password), to $RAG_PIPELINE_POSTGRES_URL when
    that is set, or back to sqlite with `sqlite`; with none of them the file is left as it is.
    Returns (home, the storage block now configured, a warning about the variable's form or None)."""
    warning = driver_from_environment()
    home = instance_home()
    config = home / "dagster.yaml"
    wanted = None if sqlite else storage_choice(postgres)
    if sqlite or wanted is not None:
        text = config.read_text(encoding="utf-8")
        updated = with_storage(text, wanted)
        if updated != text:
            config.write_text(updated, encoding="utf-8")
    validate_instance_yaml(home)
    return home, configured_storage(home), warning


def get_instance() -> dg.DagsterInstance:
    home = instance_home()
    if os.environ.get(POSTGRES_URL_ENV) and configured_storage(home) is None:
        raise InstanceConfigError(
            f"${POSTGRES_URL_ENV} is set but {home / 'dagster.yaml'} stores runs in sqlite: "
            "run `rag-pipeline init` to switch the instance to PostgreSQL (or unset the variable)"
        )
    return dg.DagsterInstance.get()


@dataclass
class RunSummary:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def merge(self, other: RunSummary) -> RunSummary:
        self.succeeded += other.succeeded
        self.failed.update(other.failed)
        return self


def _user_error(error):
    """The first error in a chain that is not Dagster's wrapper around it."""
    while error.cause is not None and "dagster" in (error.cls_name or "").lower():
        error = error.cause
    return error


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            return f"{event.step_key}: {_user_error(event.step_failure_data.error).message.strip()}"
    for event in result.all_events:  # no step failed: the run itself did (a broker gone, a lost worker)
        error = getattr(event.event_specific_data, "error", None) if event.is_run_failure else None
        if error is not None:
            error = _user_error(error)
            return f"run failed: {(error.message.strip().splitlines() or [error.cls_name])[0]}"
    return "run failed"


def materialize_partitions(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: list[str],
    partition_keys: list,
    label: str,
    resources: dict | None = None,
    progress: bool = True,
    log_level: str = "WARNING",
) -> RunSummary:
    """Materialize `selection` (asset names) of `defs` once per partition key; failures are collected, not raised.

    Dagster's own step logs go to the console at `log_level` (the run's full log is in the instance).
    """
    summary = RunSummary()
    launch = _executor_launch(defs, resources) if executor_choice() == CELERY else None
    resources = resources if resources is not None else dict(defs.resources)
    graph = [*defs.assets, *defs.asset_checks]
    for key in tqdm(partition_keys, desc=label, disable=not progress, unit="partition"):
        signals_before = len(runs.RECEIVED)
        # The owning process (stale-run cleanup) and this invocation (what an interrupt left undone).
        tags = {runs.LAUNCHED_BY_TAG: "cli", runs.SESSION_TAG: runs.SESSION, runs.STAGE_TAG: label, **runs.owner_tags()}
        run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        try:
            if launch is not None:
                result = launch(instance, selection, key, tags, run_config)
            else:
                result = dg.materialize(
                    graph,
                    selection=selection,
                    partition_key=key,
                    instance=instance,
                    resources=resources,
                    raise_on_error=False,
                    tags=tags,
                    run_config=run_config,
                )
        except runs.Interrupted as interrupt:  # outside Dagster's own interrupt handling
            runs.cancel_runs(instance, [], interrupt.signal_name)
            raise
        received = runs.RECEIVED[signals_before:]
        if received or runs.was_interrupted(result):
            signal_name = received[-1] if received else "SIGINT"
            runs.cancel_runs(instance, [result.run_id], signal_name)
            raise runs.Interrupted(signal_name)
        name = str(key)
        if result.success:
            summary.succeeded.append(name)
        else:
            summary.failed[name] = _failure_message(result)
    return summary


def _executor_launch(defs: dg.Definitions, resources: dict | None):
    """How `materialize_partitions` runs one partition under the definitions' own executor (celery):
    Dagster's `execute_job` of the asset job as a reconstructable pointer, so that the executor's
    workers load the same definitions. This process orchestrates the run; the steps run where the
    executor sends them. `dg.materialize` would always run in-process."""
    from rag_pipeline import definitions

    if defs is not definitions.defs:
        raise ExecutorConfigError(f"${EXECUTOR_ENV}=celery runs the definitions of rag_pipeline.definitions, "
                                  "which the workers load: other Definitions run in-process only")
    if resources is not None:
        raise ExecutorConfigError(f"${EXECUTOR_ENV}=celery: resources given in Python cannot reach the workers; "
                                  "configure them in pipeline.yaml (or run in-process)")
    job = reconstructable_asset_job()
    executor = job.get_definition().executor_def
    if executor.name != CELERY:
        raise ExecutorConfigError(f"${EXECUTOR_ENV}=celery, but rag_pipeline.definitions was loaded with the "
                                  f"{executor.name} executor: set the variable before the definitions are imported")
    asset_defs = {key: defs.resolve_assets_def(key) for key in defs.resolve_all_asset_keys()}

    def launch(instance: dg.DagsterInstance, selection: list[str], key, tags: dict, run_config: dict):
        keys = [dg.AssetKey(name) for name in selection]
        if key is not None:
            partitions = asset_defs[keys[0]].partitions_def
            tags = {**tags, **partitions.get_tags_for_partition_key(str(key))}
        # A run whose orchestrator died holds its pool slots until someone notices (in-process runs
        # do this when their StateResource starts; here no resource starts in this process).
        runs.cleanup_stale_runs(instance, lambda line: print(line), by="rag-pipeline")
        result = dg.execute_job(job, instance, run_config=run_config, tags=tags, asset_selection=keys)
        if not result.success:
            # A step that never reported its end (its task failed in celery) keeps its pool slot until
            # run monitoring frees it (in the daemon, after a delay): freed now for the next run.
            runs.free_slots_of_finished_runs(instance, lambda line: print(line))
        return result

    return launch


def blocked_papers(defs: dg.Definitions, instance: dg.DagsterInstance, papers: list[str]) -> dict[str, str]:
    """Papers a blocking check of `defs` holds back, with why: the check's latest evaluation for the
    paper failed with ERROR severity and still describes the paper's latest materialization of the
    checked asset (a re-materialization, fixed or not, re-runs the check). Dagster itself skips the
    steps downstream of a failed blocking check only within the run that ran it."""
    from dagster._core.event_api import PartitionKeyFilter  # the filter of the storage's check queries
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    keys = [spec.key for checks in defs.asset_checks for spec in checks.check_specs if spec.blocking]
    if not keys or not papers:
        return {}
    storage = instance.event_log_storage
    reasons: dict[str, list[str]] = {}
    for info in storage.get_asset_check_partition_info(keys, partition_keys=list(papers)):
        if info.latest_execution_status != AssetCheckExecutionRecordStatus.FAILED or not info.is_current:
            continue
        record = storage.get_latest_asset_check_execution_by_key(
            [info.check_key], partition_filter=PartitionKeyFilter(key=info.partition_key)
        ).get(info.check_key)
        evaluation = record.evaluation if record else None
        if evaluation is None or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        check = f"{info.check_key.asset_key.to_user_string()}:{info.check_key.name}"
        reasons.setdefault(info.partition_key, []).append(f"{check}: {evaluation.description or 'failed'}")
    return {paper: "blocked by check " + " | ".join(sorted(found)) for paper, found in reasons.items()}


def materialize_selections(
    defs: dg.Definitions, instance: dg.DagsterInstance, selections: dict, label: str, resources: dict | None, progress: bool,
    jobs: int = 1,
) -> RunSummary:
    """``materialize_partitions`` for {partition key: the assets it needs}: one run per partition,
    keys that need the same assets together (in their given order).

    With ``jobs`` > 1, the leading assets that need neither a model nor Chroma (``side_by_side``)
    run for several partitions at once, one run per partition in ``jobs`` processes; the rest
    follow in this process, one partition after another, as with ``jobs`` = 1."""
    summary = RunSummary()
    groups: dict[tuple[str, ...], list] = {}
    for key, assets in selections.items():
        groups.setdefault(tuple(assets), []).append(key)
    for assets, keys in groups.items():
        parallel = side_by_side(defs, list(assets)) if jobs > 1 and len(keys) > 1 and parallel_allowed(defs, resources) else []
        if parallel:
            summary.merge(materialize_in_processes(instance, parallel, keys, label, jobs, progress))
            keys = [key for key in keys if str(key) not in summary.failed]
        rest = [asset for asset in assets if asset not in parallel]
        if rest and keys:
            summary.merge(materialize_partitions(defs, instance, rest, keys, label, resources, progress))
    return summary


def side_by_side(defs: dg.Definitions, selection: list[str]) -> list[str]:
    """The leading assets of `selection` (in graph order) whose steps go to the `cpu` queue: they load
    no model and open no Chroma, so runs of different partitions may execute them at the same time.
    An embedded Chroma directory has one writer and a model is loaded once per process, so the
    assets from the first `chroma` or `gpu` step on stay in one process."""
    prefix = []
    for name in selection:
        op_tags = defs.resolve_assets_def(dg.AssetKey(name)).op.tags
        if op_tags.get(QUEUE_TAG, CPU_QUEUE) != CPU_QUEUE:
            break
        prefix.append(name)
    return prefix


def parallel_allowed(defs: dg.Definitions, resources: dict | None) -> bool:
    """Runs in other processes load `rag_pipeline.definitions` with pipeline.yaml's resources: only
    those definitions, without resources given in Python, can run there."""
    from rag_pipeline import definitions

    return defs is definitions.defs and resources is None


def default_jobs() -> int:
    """Processes for side-by-side partitions: $RAG_PIPELINE_JOBS, else half the cores from 4 cores on,
    else 1. Measured on 2 cores (benchmarks/distributed.py): two processes converting papers made
    ingest slower (0.89x and 0.96x in two runs) — the conversion is a fifth of it, each process pays for loading the
    definitions, and indexing, the rest, stays in one process and uses the cores through torch."""
    value = os.environ.get(JOBS_ENV)
    if value:
        try:
            jobs = int(value)
        except ValueError:
            raise ExecutorConfigError(f"${JOBS_ENV}={value!r}: expected a whole number of processes (1 = none side by side)") from None
        if jobs < 1:
            raise ExecutorConfigError(f"${JOBS_ENV}={value!r}: expected at least 1")
        return jobs
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores // 2 if cores >= MIN_CORES_SIDE_BY_SIDE else 1


MIN_CORES_SIDE_BY_SIDE = 4
JOBS_ENV = "RAG_PIPELINE_JOBS"


def materialize_in_processes(
    instance: dg.DagsterInstance, selection: list[str], keys: list, label: str, jobs: int, progress: bool,
) -> RunSummary:
    """One run per partition key, `jobs` of them at a time, each in a process of its own (spawned,
    so it loads the definitions afresh, like a celery worker or the UI's run launcher). The runs
    carry this invocation's session tag; an interrupt stops the processes and cancels their runs."""
    summary = RunSummary()
    processes = ProcessPoolExecutor(min(jobs, len(keys)), mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_init_run_process, initargs=(runs.SESSION,))
    try:
        futures = {processes.submit(_materialize_one, selection, key, label): str(key) for key in keys}
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"{label} ({jobs} processes)",
                           disable=not progress, unit="partition"):
            name = futures[future]
            try:
                error, interrupted = future.result()
            except BrokenProcessPool as died:  # killed (SIGKILL, out of memory): its run is left to the stale-run cleanup
                error, interrupted = f"the process running this partition died ({died})", None
            if interrupted:
                raise runs.Interrupted(interrupted)
            if error is None:
                summary.succeeded.append(name)
            else:
                summary.failed[name] = error
    except BaseException as stop:
        processes.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():  # SIGTERM: each run ends at its next safe point
            child.terminate()
        for child in multiprocessing.active_children():
            child.join(timeout=30)
        signal_name = stop.signal_name if isinstance(stop, runs.Interrupted) else "SIGINT"
        unfinished = [run.run_id for run in runs.session_runs(instance, runs.SESSION) if not run.is_finished]
        runs.cancel_runs(instance, unfinished, signal_name)
        raise
    processes.shutdown()
    return summary


def _init_run_process(session: str) -> None:
    # The invocation's session, so that what an interrupt left undone is found across processes;
    # Ctrl-C reaches the whole process group: the parent decides, the children stop when it says.
    runs.SESSION = session
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _materialize_one(selection: list[str], key, label: str) -> tuple[str | None, str | None]:
    """In a run process: one partition of `selection`; (error or None, signal name if interrupted)."""
    from rag_pipeline import definitions

    try:
        summary = materialize_partitions(definitions.defs, get_instance(), selection, [key], label, progress=False)
    except runs.Interrupted as interrupt:
        return None, interrupt.signal_name
    return summary.failed.get(str(key)), None


INGEST_SELECTION = [asset.name for asset in contracts.INGEST_ASSETS]
GENERATION_SELECTION = [asset.name for asset in (*contracts.GENERATION_ASSETS, contracts.GENERATION_METRICS)]


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    papers: list[str],
    models: list[str],
    study_papers: list[str] = (),
    study_models: list[str] = (),
    judge: bool = True,
    resources: dict | None = None,
    progress: bool = True,
    reingest: bool = False,
    jobs: int | None = None,
) -> RunSummary:
    """The whole graph for a selection: ingest `papers`, generate `models` on them, load the
    recorded study (`study_models` × `study_papers`, which need no ingestion), judge, leaderboard.

    The registries and configuration are observed first (their versions are inputs of the graph);
    then only stale or missing partitions run, as the UI would mark them, so a second run with
    nothing changed runs nothing. `reingest` ingests the papers again regardless. Papers are
    converted and chunked `jobs` at a time (default `default_jobs()`: half the cores from 4 on; only for
    `rag_pipeline.definitions` without Python-side resources), indexed one after another.
    """
    sync_registry_partitions(instance)
    record_observations(instance)
    ingest = ({paper: INGEST_SELECTION for paper in papers} if reingest
              else stale_selections(defs, instance, INGEST_SELECTION, list(papers)))
    jobs = default_jobs() if jobs is None else jobs
    summary = materialize_selections(defs, instance, ingest, "ingest", resources, progress, jobs=jobs)
    blocked = blocked_papers(defs, instance, papers)  # a failed blocking check stops the paper here, with why
    summary.failed.update(blocked)
    ingested = [p for p in papers if p not in summary.failed and p not in blocked]
    keys = [model_paper_key(m, p) for m in models for p in ingested]
    keys += [model_paper_key(m, p) for m in study_models for p in study_papers]
    summary.merge(materialize_selections(defs, instance, stale_selections(defs, instance, GENERATION_SELECTION, keys),
                                         "generate", resources, progress))
    if judge:
        # Labels, then the cascade's calibration (a no-op table unless judge.modes has "cascade").
        for asset in (contracts.JUDGE_LABELS, contracts.JUDGE_CALIBRATION):
            if stale_or_missing(defs, instance, [asset.name], [None]):
                summary.merge(materialize_partitions(defs, instance, [asset.name], [None], asset.name, resources, progress))
        judged = sorted(set(ingested) | set(study_papers))
        judged = stale_or_missing(defs, instance, [contracts.JUDGMENTS.name], judged)
        summary.merge(materialize_partitions(defs, instance, [contracts.JUDGMENTS.name], judged, "judge", resources, progress))
    # The leaderboard reads every partition (more than Dagster tracks staleness through): rebuilt
    # whenever anything ran or it is missing.
    if summary.succeeded or summary.failed or stale_or_missing(defs, instance, [contracts.LEADERBOARD.name], [None]):
        summary.merge(materialize_partitions(defs, instance, [contracts.LEADERBOARD.name], [None], "leaderboard", resources, progress))
    return summary
