"""The distributed executor: Dagster's celery executor, chosen by configuration, with the steps
placed on `gpu`, `chroma` and `cpu` queues by Dagster's own `dagster-celery/queue` op tag; and
real celery workers (one process per queue) against the local Redis materializing what the
in-process default materializes, with the same artifacts and data versions; and a run launched as
the UI launches it (GraphQL `launchRun` on a real `dagster-webserver`) whose steps run on a worker."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from rag_pipeline import contracts as c
from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.defs import executors
from rag_pipeline.defs.executors import (
    BACKEND_ENV,
    BROKER_ENV,
    CHROMA_QUEUE,
    CPU_QUEUE,
    EXECUTOR_ENV,
    GPU_QUEUE,
    QUEUE_TAG,
    ExecutorConfigError,
    queue_for,
)
from rag_pipeline.defs.generation.assets import MODEL_POOL_LOG
from rag_pipeline.settings import REPO_ROOT
from rag_pipeline_tests.celery_workers import celery_env, private_redis_url, start_worker, wait_ready
from rag_pipeline_tests.dagster_web import DagsterWeb
from rag_pipeline_tests.services import require_service
from rag_pipeline_tests.suite_data import SUITE_DATA

PAPERS = ["demo-sparse-routing", "demo-rerank-study"]
MODELS = ["lead-3", "top-chunk"]  # lead-3 writes summaries, top-chunk answers: one model load each


# ---- placement and choice (no services) ---------------------------------------------------------------
def test_steps_go_to_the_queue_their_pool_and_resources_name():
    from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

    from rag_pipeline.definitions import defs

    assert QUEUE_TAG == DAGSTER_CELERY_QUEUE_TAG
    job = defs.resolve_implicit_global_asset_job_def()
    queues = {}
    for node in job.graph.node_dict.values():
        op = node.definition
        expected = queue_for(op.pool, op.required_resource_keys)
        queues[node.name] = op.tags.get(QUEUE_TAG, CPU_QUEUE)  # celery's default queue: CELERY_SETTINGS
        assert queues[node.name] == expected, (node.name, op.pool, sorted(op.required_resource_keys))
    by_queue = {queue: sorted(name for name, q in queues.items() if q == queue) for queue in set(queues.values())}
    # Every step that loads a model (pool gpu) on `gpu`; Chroma's readers and writer on `chroma`.
    assert by_queue[GPU_QUEUE] == ["answers", "judge_calibration", "judgments", "summaries"]
    assert by_queue[CHROMA_QUEUE] == ["paper_index", "retrievals"]
    assert {"paper_pdf", "paper_chunks", "generation_metrics", "leaderboard"} <= set(by_queue[CPU_QUEUE])
    assert executors.CELERY_SETTINGS["task_default_queue"] == CPU_QUEUE


def test_the_executor_is_chosen_by_the_environment(monkeypatch):
    for name in (EXECUTOR_ENV, BROKER_ENV, BACKEND_ENV):
        monkeypatch.delenv(name, raising=False)
    assert executors.executor_def() is dg.in_process_executor  # a laptop's default, unchanged
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    with pytest.raises(ExecutorConfigError, match=BROKER_ENV):
        executors.executor_def()
    monkeypatch.setenv(BROKER_ENV, "amqp://rag:s3cret@mq.internal:5672//")
    config = executors.celery_config()
    # The URLs stay in the environment: the definitions hold references, rpc:// results for RabbitMQ.
    assert config["broker"] == {"env": BROKER_ENV} and config["backend"] == "rpc://"
    assert "s3cret" not in json.dumps(config)
    assert executors.executor_def().name == "celery"
    monkeypatch.setenv(BROKER_ENV, "redis://:pw@redis.internal:6379/0")
    assert executors.celery_config()["backend"] == {"env": BROKER_ENV}
    monkeypatch.setenv(BACKEND_ENV, "redis://:pw@redis.internal:6379/1")
    assert executors.celery_config()["backend"] == {"env": BACKEND_ENV}
    monkeypatch.setenv(EXECUTOR_ENV, "kubernetes")
    with pytest.raises(ExecutorConfigError, match="in_process, celery"):
        executors.executor_choice()


def test_the_ui_definitions_take_the_celery_executor_from_the_environment():
    """What `dagster dev` and the code server load: the same module, in a fresh process."""
    probe = ("from rag_pipeline.definitions import defs; job = defs.resolve_implicit_global_asset_job_def(); "
             "print(job.executor_def.name)")
    env = {**os.environ, EXECUTOR_ENV: "celery", BROKER_ENV: "redis://127.0.0.1:6379/0"}
    env.pop(BACKEND_ENV, None)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split()[-1] == "celery"
    env.pop(EXECUTOR_ENV)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split()[-1] == "in_process"


# ---- real workers ------------------------------------------------------------------------------------------
def _data_copy(target: Path) -> Path:
    from rag_pipeline_tests.defs.test_living_pipeline import _edit_yaml, _keep

    shutil.copytree(SUITE_DATA, target)
    _keep(target / "papers.yaml", "papers", "id",
          PAPERS + [p["id"] for p in _papers(target) if p.get("collection") == "reference_study"])
    _keep(target / "models.yaml", "models", "name", MODELS + ["qwen2.5-coder-0.5b"])  # the judge model stays registered
    # Large chunks: fewer to embed, the same comparison (both runs read this configuration).
    _edit_yaml(target / "pipeline.yaml", lambda config: (config["judge"].update(enabled=False),
                                                         config["chunking"].update(chunk_size=3000)))
    return target


def _papers(data: Path) -> list[dict]:
    import yaml

    return yaml.safe_load((data / "papers.yaml").read_text(encoding="utf-8"))["papers"]


def _env(state: Path, data: Path) -> dict:
    env = {**os.environ, "RAG_PIPELINE_HOME": str(state), "DAGSTER_HOME": str(state / "dagster"),
           "RAG_PIPELINE_DATA": str(data), "PYTHONUNBUFFERED": "1", "DAGSTER_DISABLE_TELEMETRY": "1"}
    for name in (EXECUTOR_ENV, BROKER_ENV, BACKEND_ENV):
        env.pop(name, None)
    return env


def _run_cli(env: dict, log: Path) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", ",".join(PAPERS),
                           "--models", ",".join(MODELS), "--no-judge"],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "partition(s) failed" not in done.stdout, done.stdout[-4000:]
    return time.monotonic() - started


def _instance(state: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(state / "dagster"))


def _data_versions(instance: dg.DagsterInstance) -> dict:
    """{(asset, partition): the data version of its latest materialization}."""
    versions = {}
    for name in c.ASSETS_BY_NAME:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(name)), limit=1000).records
        for record in records:  # newest first
            tags = record.event_log_entry.dagster_event.event_specific_data.materialization.tags
            versions.setdefault((name, record.partition_key), tags.get("dagster/data_version"))
    return versions


# Wall-clock measurements, different in any two runs: a generation's latency and time of writing,
# the latency metric computed from it, and the leaderboard, which ranks models by it too.
CLOCK_COLUMNS = ("latency_s", "created_at")
CLOCK_METRIC = "latency_s"
CLOCK_ASSETS = (c.GENERATION_METRICS.name, c.LEADERBOARD.name)


def _artifacts(state: Path) -> dict:
    """{(asset, partition keys): the current stored version}; the generation and metric tables
    without their clock columns and rows instead of their stored versions, which hash those too."""
    store = ArtifactStore(state / "artifacts")
    refs = {(ref.asset, ref.keys): ref.version for ref in store.current_refs()}
    tables = {}
    for asset, keys in list(refs):
        if asset in (c.SUMMARIES.name, c.ANSWERS.name, c.GENERATION_METRICS.name):
            frame = store.read_frame(asset, *keys)
            if asset == c.GENERATION_METRICS.name:
                frame = frame[frame["metric"] != CLOCK_METRIC]
            tables[(asset, keys)] = frame.drop(columns=[col for col in CLOCK_COLUMNS if col in frame]).to_json()
        if asset in (c.SUMMARIES.name, c.ANSWERS.name, *CLOCK_ASSETS):
            del refs[(asset, keys)]
    return {"versions": refs, "tables": tables}


def _step_workers(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """{step: the celery workers (by name) that executed it}, from the executor's engine events."""
    placed: dict[str, set[str]] = {}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            data = entry.dagster_event.event_specific_data
            metadata = getattr(data, "metadata", None) or {}
            if "Celery worker" in metadata:
                placed.setdefault(entry.step_key, set()).add(metadata["Celery worker"].value.split("@")[0])
    return placed


def _model_pool_lines(instance: dg.DagsterInstance) -> list[tuple[float, int, int, int]]:
    """(time, process, loads in the step, loads since the process started) of every generation step."""
    lines = []
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            message = entry.user_message or ""
            if message.startswith(MODEL_POOL_LOG):
                pid, step, total = map(int, re.findall(r"\d+", message)[:3])
                lines.append((entry.timestamp, pid, step, total))
    return sorted(lines)


@pytest.mark.slow
def test_celery_workers_materialize_what_the_in_process_run_does(tmp_path):
    broker = private_redis_url(require_service("redis"))
    data = _data_copy(tmp_path / "data")

    distributed = tmp_path / "celery"
    env = celery_env(_env(distributed, data), broker)
    # One process per queue; the pipeline's own steps never run in the test process.
    workers = [start_worker(f"{queue}-{os.getpid()}", queue, 1, env, tmp_path, tmp_path)
               for queue in (GPU_QUEUE, CHROMA_QUEUE, CPU_QUEUE)]
    try:
        in_process = tmp_path / "in_process"  # the reference, while the workers start
        in_process_s = _run_cli(_env(in_process, data), tmp_path / "in_process.log")
        wait_ready(workers)
        celery_s = _run_cli(env, tmp_path / "celery.log")
        gpu_children = workers[0].children()
    finally:
        for worker in workers:
            worker.stop()
    print(f"\nin-process {in_process_s:.1f}s, celery (3 workers) {celery_s:.1f}s")

    with _instance(in_process) as reference, _instance(distributed) as instance:
        expected, got = _data_versions(reference), _data_versions(instance)
        placed = _step_workers(instance)
        pool = _model_pool_lines(instance)
        assert not _step_workers(reference)  # the default stays in-process
        runs = instance.get_runs()
        assert runs and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert {run.job_name for run in runs} == {"__ASSET_JOB"}
    # Same materializations with the same data versions, and the same stored artifacts.
    materialized = {asset for asset, _ in expected}
    assert {"paper_index", "retrievals", "summaries", "answers", "generation_metrics", "leaderboard"} <= materialized
    assert {(a, p) for a, p in expected if a == "summaries"} >= {("summaries", f"lead-3|{p}") for p in PAPERS}
    assert got.keys() == expected.keys()
    clocked = {key for key in expected if key[0] in CLOCK_ASSETS}
    assert {key: got[key] for key in got.keys() - clocked} == {key: expected[key] for key in expected.keys() - clocked}
    assert _artifacts(distributed) == _artifacts(in_process)
    # Each step on the worker of its queue, in that worker's process.
    names = {worker.name.split("-")[0]: worker.name for worker in workers}
    for step, queue in {"paper_pdf": CPU_QUEUE, "paper_index": CHROMA_QUEUE, "retrievals": CHROMA_QUEUE,
                        "summaries": GPU_QUEUE, "answers": GPU_QUEUE, "generation_metrics": CPU_QUEUE,
                        "leaderboard": CPU_QUEUE}.items():
        assert placed.get(step) == {names[queue]}, (step, placed.get(step))
    # The gpu worker's one process served every generation step and kept its model between them:
    # 4 runs (2 models x 2 papers) loaded each model once.
    assert len(gpu_children) == 1
    assert len(pool) == 2 * len(MODELS) * len(PAPERS)
    assert {pid for _, pid, _, _ in pool} == set(gpu_children)
    assert sum(step for _, _, step, _ in pool) == len(MODELS)
    assert pool[-1][3] == len(MODELS)


# ---- a run launched the way the UI launches it -------------------------------------------------------------
UI_PAPER = PAPERS[0]
UI_SELECTION = ["paper_pdf", "paper_markdown", "paper_text", "paper_chunks"]  # the `cpu` queue's ingest: no model
UI_WAIT_S = 300.0
# `dagster dev` queues a launched run for its daemon (Dagster's default QueuedRunCoordinator), whose
# run launcher then starts it. Here the webserver hands the run to the same launcher itself: no
# daemon, whose sensors (on by default) would launch runs of their own.
DIRECT_LAUNCH = """\
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""
WORKSPACE_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name locationOrLoadError {
  __typename ... on RepositoryLocation { name repositories { name } } ... on PythonError { message } } } }
  ... on PythonError { message } } }"""
LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) { launchRun(executionParams: $executionParams) {
  __typename ... on LaunchRunSuccess { run { runId status } } ... on Error { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
RUN_STATUS = """
query RunStatus($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } ... on Error { message } } }"""


def _run_events(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> list:
    return list(instance.all_logs(run_id, of_type=event_type))


def _broker_messages(broker: str, queue: str) -> int:
    """Messages waiting in `queue` of a Redis broker: kombu keeps a list per queue (and priority),
    named after the queue; a message a worker has taken is no longer in it."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        return sum(client.llen(key) for key in client.scan_iter(match=f"{queue}*") if client.type(key) == b"list")
    finally:
        client.close()


def test_a_run_launched_through_the_ui_runs_its_steps_on_the_celery_workers(tmp_path):
    """`launchRun` through a real webserver's GraphQL, as the UI's "Materialize" of one paper: the
    instance's run launcher starts the run in a process of its own (the code server's), which loads
    `rag_pipeline.definitions` with the celery executor, and every step runs in the worker process
    that serves its queue. While no worker serves the `cpu` queue the run waits, steps unstarted:
    the UI's runs never fall back to running their steps in-process."""
    from celery import Celery

    from rag_pipeline.defs.partitions import sync_registry_partitions
    from rag_pipeline.defs.runner import INSTANCE_CONFIG

    broker = private_redis_url(require_service("redis"))
    state = tmp_path / "state"
    env = celery_env(_env(state, SUITE_DATA), broker)  # ingest reads data/, writes only the state
    home = state / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(INSTANCE_CONFIG + DIRECT_LAUNCH, encoding="utf-8")
    with _instance(state) as instance:
        sync_registry_partitions(instance)  # what `rag-pipeline init` and the registry sensor do
        assert instance.has_dynamic_partition("papers", UI_PAPER)

    # One worker process, serving first only the `gpu` queue: nothing these steps go to.
    worker = start_worker(f"ui-{os.getpid()}", GPU_QUEUE, 1, env, tmp_path, tmp_path)
    webserver = DagsterWeb(["dagster-webserver", "-m", "rag_pipeline.definitions"], env, tmp_path / "webserver.log")
    try:
        webserver.wait_serving()
        wait_ready([worker])
        workspace = webserver.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        [entry] = workspace["locationEntries"]
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location
        [repository] = location["repositories"]
        launched = webserver.graphql(LAUNCH_RUN, executionParams={
            "selector": {"repositoryLocationName": location["name"], "repositoryName": repository["name"],
                         "jobName": "__ASSET_JOB", "assetSelection": [{"path": [name]} for name in UI_SELECTION]},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": UI_PAPER}]},
        })["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def status() -> str:
            return webserver.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]

        # The run's process submits its first step to celery's `cpu` queue, where it waits: the
        # in-process executor would have started (and soon finished) the steps instead, and a worker
        # on `gpu` does not take them. What is asserted is only what must not happen in 5 s.
        with _instance(state) as instance:
            deadline = time.monotonic() + UI_WAIT_S
            while not any('"paper_pdf" to queue "cpu"' in (entry.user_message or "")
                          for entry in _run_events(instance, run_id, dg.DagsterEventType.ENGINE_EVENT)):
                current = status()
                assert current in ("STARTING", "STARTED"), \
                    f"run {current} before any step went to celery (in-process?):\n{webserver.tail()}"
                assert time.monotonic() < deadline, f"no step submitted to celery:\n{webserver.tail()}"
                time.sleep(1)
            time.sleep(5)
            assert status() == "STARTED"
            assert not _run_events(instance, run_id, dg.DagsterEventType.STEP_START)
            assert _broker_messages(broker, CPU_QUEUE) == 1
            assert "] received" not in worker.output  # celery logs "Task execute_plan[ID] received"

        # The same worker process now serves `cpu` too (celery's remote control) and takes the steps.
        hostname = f"{worker.name}@{socket.gethostname()}"  # celery's -n NAME@%h
        with Celery(broker=broker) as control:
            replies = control.control.add_consumer(CPU_QUEUE, destination=[hostname], reply=True, timeout=30)
        assert replies and "ok" in replies[0][hostname], replies
        deadline = time.monotonic() + UI_WAIT_S
        while (current := status()) not in ("SUCCESS", "FAILURE", "CANCELED"):
            assert time.monotonic() < deadline, f"run {run_id} still {current}:\n{webserver.tail()}\n{worker.output[-3000:]}"
            time.sleep(2)
        pool = set(worker.children())  # while the worker lives
    finally:
        webserver.stop()
        worker.stop()

    assert current == "SUCCESS", f"{webserver.tail()}\n{worker.output[-3000:]}"
    with _instance(state) as instance:
        run = instance.get_run_by_id(run_id)
        started = _run_events(instance, run_id, dg.DagsterEventType.STEP_START)
        submitted = [entry for entry in _run_events(instance, run_id, dg.DagsterEventType.ENGINE_EVENT)
                     if (entry.user_message or "").startswith("Submitting celery task")]
        run_process = {entry.dagster_event.pid for entry in _run_events(instance, run_id, dg.DagsterEventType.RUN_START)}
        placed = _step_workers(instance)
        materialized = {name: {record.partition_key for record in instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[UI_PAPER]), limit=10).records}
            for name in UI_SELECTION}
    assert run.job_name == "__ASSET_JOB" and run.tags["dagster/partition"] == UI_PAPER
    # The run's own process (started by the launcher: neither this one nor the webserver) submitted
    # every step to celery; every step ran in the worker's one pool process, none in the run's.
    steps = {entry.step_key for entry in started}
    assert set(UI_SELECTION) <= steps  # and the assets' checks
    assert {entry.step_key for entry in submitted} == steps
    assert len(run_process) == 1 and {entry.dagster_event.pid for entry in submitted} == run_process
    assert not run_process & {os.getpid(), webserver.process.pid}
    assert placed == {step: {worker.name} for step in steps}, placed
    assert len(pool) == 1 and {entry.dagster_event.pid for entry in started} == pool, (started, pool)
    assert materialized == {name: {UI_PAPER} for name in UI_SELECTION}
