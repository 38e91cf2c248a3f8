"""Faults under the celery executor, against the real local Redis and real workers: a worker's pool
process killed with SIGKILL in the middle of a step (indexing on the `chroma` queue, generation on
the `gpu` queue) leaves nothing half-written; celery hands the step to the worker's new process
(`task_acks_late` + `task_reject_on_worker_lost`, rag_pipeline.defs.executors.CELERY_SETTINGS), the
run finishes, and the stored artifacts equal those of an undisturbed in-process run. A broker
restart mid-step (a private Redis) and a database restart mid-step (a private PostgreSQL holding
the instance) are survived, or fail the run with a clear error and free what it held, after which
a second `rag-pipeline run` finishes the work."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rag_pipeline.artifacts import MANIFEST, ArtifactStore
from rag_pipeline.defs.executors import CHROMA_QUEUE, CPU_QUEUE, GPU_QUEUE
from rag_pipeline.defs.instance import POSTGRES_URL_ENV
from rag_pipeline.generate.backends.base import TEST_HOOK_ITEM_DELAY_ENV
from rag_pipeline.settings import REPO_ROOT
from rag_pipeline_tests.celery_workers import celery_env, private_redis_url, start_worker, wait_ready
from rag_pipeline_tests.defs.test_celery_executor import CLOCK_COLUMNS, _artifacts, _env
from rag_pipeline_tests.defs.test_living_pipeline import _edit_yaml, _keep
from rag_pipeline_tests.services import require_service, service_unavailable
from rag_pipeline_tests.suite_data import SUITE_DATA

PAPER = "demo-rerank-study"
MODEL = "top-chunk"  # answers, one per question: with the delay hook a step of several seconds
KILLED_STEPS = ("paper_index", "answers")


def _data(target: Path) -> Path:
    shutil.copytree(SUITE_DATA, target)
    _keep(target / "papers.yaml", "papers", "id", [PAPER])
    _keep(target / "models.yaml", "models", "name", [MODEL])
    _edit_yaml(target / "pipeline.yaml", lambda config: config["judge"].update(enabled=False))
    return target


def _cli(env: dict, log: Path) -> subprocess.Popen:
    out = log.open("w")
    return subprocess.Popen([sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", PAPER, "--models", MODEL,
                             "--no-judge"], env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)


def _prepare(reference: Path, data: Path, env: dict, workers: list) -> None:
    """The undisturbed in-process run into `reference` (while the workers start), the workers
    ready, and the distributed instance created before anyone reads it (two processes creating
    one sqlite store race)."""
    local = {name: value for name, value in _env(reference, data).items() if name != POSTGRES_URL_ENV}  # sqlite
    done = subprocess.run([sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", PAPER, "--models", MODEL,
                           "--no-judge"], env=local, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    wait_ready(workers)
    subprocess.run([sys.executable, "-m", "rag_pipeline.cli", "init"], env=env, cwd=REPO_ROOT, check=True,
                   capture_output=True, timeout=300)


def _started(instance: dg.DagsterInstance, step: str) -> str | None:
    """The run in which `step` has started and not finished, if any."""
    for run in instance.get_runs():
        events = [e.dagster_event.event_type_value for e in instance.all_logs(run.run_id) if e.step_key == step and e.dagster_event]
        if "STEP_START" in events and not {"STEP_SUCCESS", "STEP_FAILURE"} & set(events):
            return run.run_id
    return None


def _kill_children(worker) -> list[int]:
    children = worker.children()
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    return children


def _until(check, timeout_s: float, what: str, cli: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if cli.poll() is not None:
            pytest.fail(f"rag-pipeline run ended ({cli.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout_s:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_sigkill_mid_step_is_redelivered_and_nothing_is_half_written(tmp_path):
    broker = private_redis_url(require_service("redis"))
    data = _data(tmp_path / "data")
    reference, distributed = tmp_path / "in_process", tmp_path / "celery"

    env = celery_env({**_env(distributed, data), TEST_HOOK_ITEM_DELAY_ENV: "1.0"}, broker)
    workers = {queue: start_worker(f"{queue}-{os.getpid()}", queue, 1, env, tmp_path, tmp_path)
               for queue in (GPU_QUEUE, CHROMA_QUEUE, CPU_QUEUE)}
    killed: dict[str, tuple[str, list[int]]] = {}
    cli = None
    try:
        _prepare(reference, data, env, list(workers.values()))
        log = tmp_path / "celery.log"
        cli = _cli(env, log)
        with dg.DagsterInstance.from_config(str(distributed / "dagster")) as instance:
            for step, queue in zip(KILLED_STEPS, (CHROMA_QUEUE, GPU_QUEUE), strict=True):
                run_id = _until(lambda step=step: _started(instance, step), 300, f"{step} starting", cli, log)
                if step == "answers":
                    time.sleep(2.5)  # a couple of answers written to the cache: truly mid-step
                killed[step] = (run_id, _kill_children(workers[queue]))
        assert cli.wait(timeout=900) == 0, log.read_text()[-4000:]
        output = log.read_text()
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
        for worker in workers.values():
            worker.stop()
    assert "partition(s) failed" not in output, output[-3000:]

    with dg.DagsterInstance.from_config(str(distributed / "dagster")) as instance:
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
        for step, (run_id, pids) in killed.items():
            assert pids, f"no pool process to kill for {step}"
            # The step started twice in its run: killed, then again in the worker's new process, to success.
            events = [e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.step_key == step and e.dagster_event]
            assert events.count("STEP_START") == 2 and events.count("STEP_SUCCESS") == 1, (step, events)
    for queue in (CHROMA_QUEUE, GPU_QUEUE):
        log_text = workers[queue].output
        assert "WorkerLostError" in log_text and "signal 9 (SIGKILL)" in log_text, log_text[-2000:]

    cached = _assert_complete_and_equal(distributed, reference)
    assert 0 < cached < len(ArtifactStore(reference / "artifacts").read_frame("answers", MODEL, PAPER))  # truly mid-step


def _assert_complete_and_equal(distributed: Path, reference: Path) -> int:
    """Nothing half-written in `distributed`, and its artifacts those of the undisturbed `reference`
    (clock columns aside; answers written before a fault may come from the generation cache the
    second time). Returns how many answers did."""
    store = ArtifactStore(distributed / "artifacts")
    # Every stored version is complete, every current pointer names one; a killed step's draft is
    # no version, and gc removes it.
    for ref in store.all_refs():
        directory = store.version_dir(ref.asset, *ref.keys, version=ref.version)
        manifest = store.manifest(ref)
        assert (directory / MANIFEST).exists() and all((directory / name).exists() for name in manifest["files"]), ref
    assert {ref.label for ref in store.current_refs()} <= {ref.label for ref in store.all_refs()}
    store.collect_garbage(draft_age_s=0)
    assert not list((distributed / "artifacts").rglob(".draft-*"))
    got, expected = _artifacts(distributed), _artifacts(reference)
    assert got["versions"] == expected["versions"]
    answers = ("answers", (MODEL, PAPER))
    assert {k: v for k, v in got["tables"].items() if k != answers} == {k: v for k, v in expected["tables"].items() if k != answers}
    frames = [ArtifactStore(state / "artifacts").read_frame("answers", MODEL, PAPER) for state in (distributed, reference)]
    assert not frames[1]["cache_hit"].any()
    columns = [col for col in frames[1].columns if col not in (*CLOCK_COLUMNS, "cache_hit")]
    pd.testing.assert_frame_equal(frames[0][columns], frames[1][columns])
    return int(frames[0]["cache_hit"].sum())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A Redis of the test's own (the machine's redis-server binary) that it may stop and start again."""

    def __init__(self, directory: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            service_unavailable("needs the redis-server binary to restart a private Redis")
        self.port, self.directory = _free_port(), directory
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--dir", str(self.directory)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.server.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)


def _outage_mid_answers(tmp_path: Path, broker: str, extra_env: dict, service) -> tuple[bool, str]:
    """The celery run with `answers` slowed down; while it runs, `service` stops for 3 s and starts
    again. (Whether the run survived, the CLI's output); if it failed, a second `rag-pipeline run`
    has finished the work."""
    data = _data(tmp_path / "data")
    reference, distributed = tmp_path / "in_process", tmp_path / "celery"
    env = celery_env({**_env(distributed, data), TEST_HOOK_ITEM_DELAY_ENV: "1.0", **extra_env}, broker)
    workers = [start_worker(f"{queue}-{os.getpid()}", queue, 1, env, tmp_path, tmp_path) for queue in (GPU_QUEUE, CHROMA_QUEUE, CPU_QUEUE)]
    cli = None
    try:
        _prepare(reference, data, env, workers)
        log = tmp_path / "celery.log"
        cli = _cli(env, log)
        with dg.DagsterInstance.from_config(str(distributed / "dagster")) as instance:
            _until(lambda: _started(instance, "answers"), 600, "answers starting", cli, log)
        time.sleep(2.5)
        service.stop()
        time.sleep(3)
        service.start()
        cli.wait(timeout=900)
        output = log.read_text()
        survived = cli.returncode == 0 and "partition(s) failed" not in output
        if not survived:
            again = subprocess.run([sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", PAPER, "--models", MODEL,
                                    "--no-judge"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
            assert again.returncode == 0 and "partition(s) failed" not in again.stdout, (again.stdout + again.stderr)[-3000:]
        return survived, output
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
        for worker in workers:
            worker.stop()


def _no_slot_held(distributed: Path) -> bool:
    with dg.DagsterInstance.from_config(str(distributed / "dagster")) as instance:
        return instance.event_log_storage.get_concurrency_info("gpu").claimed_slots == []


@pytest.mark.slow
def test_a_broker_restart_mid_step_is_survived_or_resumed_on_relaunch(tmp_path):
    require_service("redis")
    redis = PrivateRedis(tmp_path)  # broker and result backend
    try:
        survived, output = _outage_mid_answers(tmp_path, redis.url, {}, redis)
    finally:
        redis.stop()
    if not survived:  # a clear failure under the partition's name
        assert f"{MODEL}|{PAPER}: run failed: redis.exceptions.ConnectionError: " in output, output[-3000:]
    assert _no_slot_held(tmp_path / "celery")  # nothing held by a run that died
    _assert_complete_and_equal(tmp_path / "celery", tmp_path / "in_process")
    print(f"\nbroker restarted mid-step: {'the run survived' if survived else 'the run failed clearly; a re-launch finished it'}")


class PrivatePostgres:
    """A PostgreSQL of the test's own (the machine's binaries, run as the `postgres` user, which
    the server requires), so that it can be stopped and started again mid-run."""

    def __init__(self):
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not binaries or shutil.which("runuser") is None:
            service_unavailable("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and runuser")
        self.bin, self.port = binaries[-1].parent, _free_port()
        # Directly under /tmp: the `postgres` user cannot enter pytest's private temporary directories.
        self.directory = directory = Path(tempfile.mkdtemp(prefix="rag-pipeline-pg-"))
        shutil.chown(directory, "postgres")
        self._as_postgres("initdb", "-D", str(directory / "data"), "-A", "trust", "-U", "postgres")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, tool: str, *args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{tool} {' '.join(args)}: {done.stdout[-1500:]}{done.stderr[-1500:]}"

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def start(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.directory / "data"), "-l", str(self.directory / "log"), "-w", "-o",
                          f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")


@pytest.mark.slow
def test_a_database_restart_mid_step_is_survived_or_resumed_on_relaunch(tmp_path, monkeypatch):
    require_service("postgres")
    broker = private_redis_url(require_service("redis"))
    database = PrivatePostgres()
    try:
        monkeypatch.setenv(POSTGRES_URL_ENV, database.url)  # this process reads the instance too
        survived, output = _outage_mid_answers(tmp_path, broker, {POSTGRES_URL_ENV: database.url}, database)
        assert _no_slot_held(tmp_path / "celery")
    finally:
        database.remove()
    if not survived:  # a clear failure under the partition's name
        assert f"{MODEL}|{PAPER}: " in output, output[-3000:]
    _assert_complete_and_equal(tmp_path / "celery", tmp_path / "in_process")
    print(f"\ndatabase restarted mid-step: {'the run survived' if survived else 'the run failed; a re-launch finished it'}")
