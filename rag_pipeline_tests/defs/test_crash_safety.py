"""Crash safety, for real: `rag-pipeline run` subprocesses killed with SIGKILL, SIGINT and SIGTERM in
the middle of generating, a run waiting on a slot whose holder dies, and a CLI run beside a real
`dagster-daemon` on the same instance.

Generation is made slow by the backends' test hook (RAG_PIPELINE_TEST_HOOK_ITEM_DELAY_S: the
extractive backend sleeps per item), so a kill lands mid-partition. `slow-top-chunk` answers the
paper's 8 questions in batches of 2; the generation cache is counted on disk to know what finished.
Time bounds are generous (the machine is shared); measured figures are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.defs import runs
from rag_pipeline.defs.runner import INSTANCE_CONFIG
from rag_pipeline.generate.backends.base import TEST_HOOK_ITEM_DELAY_ENV
from rag_pipeline.settings import REPO_ROOT
from rag_pipeline_tests.suite_data import SUITE_DATA

PAPER = "demo-sparse-routing"  # 8 questions
SLOW, SLOW_LEAD = "slow-top-chunk", "slow-lead"
QUESTIONS, BATCH = 8, 2
TEST_MODELS = [
    {"name": SLOW, "backend": "extractive", "extractive": {"method": "top-chunk"}, "tasks": ["answer"],
     "batch_size": BATCH, "offline": True},
    {"name": SLOW_LEAD, "backend": "extractive", "extractive": {"method": "lead", "sentences": 2},
     "tasks": ["summary"], "offline": True},
]


# ---- state, processes -----------------------------------------------------------------------------
def _register(data: Path, *models: dict) -> None:
    (data / "models.yaml").write_text(yaml.safe_dump({"models": list(models)}), encoding="utf-8")


def _data_copy(target: Path) -> Path:
    """data/ with one demo paper (and the study's, which the report reads), only SLOW_LEAD registered
    and the judge off: what the daemon's automation finds to do stays small."""
    shutil.copytree(SUITE_DATA, target)
    papers = yaml.safe_load((target / "papers.yaml").read_text(encoding="utf-8"))
    papers["papers"] = [p for p in papers["papers"] if p.get("collection") != "demo" or p["id"] == PAPER]
    (target / "papers.yaml").write_text(yaml.safe_dump(papers, allow_unicode=True), encoding="utf-8")
    _register(target, TEST_MODELS[1])
    pipeline = yaml.safe_load((target / "pipeline.yaml").read_text(encoding="utf-8"))
    pipeline["judge"]["enabled"] = False
    (target / "pipeline.yaml").write_text(yaml.safe_dump(pipeline, allow_unicode=True), encoding="utf-8")
    return target


def _env(state: Path, data: Path, delay: float) -> dict[str, str]:
    return {**os.environ, "RAG_PIPELINE_HOME": str(state), "DAGSTER_HOME": str(state / "dagster"),
            "RAG_PIPELINE_DATA": str(data), TEST_HOOK_ITEM_DELAY_ENV: str(delay), "PYTHONUNBUFFERED": "1",
            "DAGSTER_DISABLE_TELEMETRY": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag_pipeline.cli", *args]


RUN = ("run", "--papers", PAPER, "--no-judge", "--models")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A state in which the paper is ingested (the CLI, as a user would), and its data copy."""
    root = tmp_path_factory.mktemp("crash")
    data = _data_copy(root / "data")
    state = root / "state"
    done = subprocess.run(_cli("run", "--papers", PAPER, "--no-judge"), env=_env(state, data, 0), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return state, data


@pytest.fixture()
def state(ingested, tmp_path):
    """A private copy of the ingested state (instance included) and of data/, both test models registered."""
    source, data = ingested
    copy = tmp_path / "state"
    shutil.copytree(source, copy)
    shutil.copytree(data, tmp_path / "data")
    _register(tmp_path / "data", *TEST_MODELS)
    return copy, tmp_path / "data"


class Cli:
    """A `rag-pipeline` subprocess in its own process group, its output in a file."""

    def __init__(self, state: Path, data: Path, args, delay: float, name: str):
        self.log = state.parent / f"{name}.log"
        self._out = self.log.open("w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(_cli(*args), env=_env(state, data, delay), cwd=REPO_ROOT, stdout=self._out,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._out.close()


def _until(condition, timeout: float, what: str, process: Cli | None = None, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.process.poll() is not None:
            raise AssertionError(f"the CLI exited ({process.process.returncode}) before {what}:\n{process.output[-3000:]}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f":\n{process.output[-3000:]}" if process else ""))


def _cached(state: Path) -> int:
    return sum(1 for _ in (state / "cache" / "generations").glob("*/*.json"))


@contextmanager
def _instance(state: Path):
    with dg.DagsterInstance.from_config(str(state / "dagster")) as instance:
        yield instance


def _generate_runs(instance, model: str) -> list[dg.DagsterRun]:
    """The runs that generate model × paper (the CLI's, and a daemon's single-partition range), oldest first."""
    key = f"{model}|{PAPER}"

    def partition(run):
        tags = run.tags
        if tags.get("dagster/asset_partition_range_start") == tags.get("dagster/asset_partition_range_end"):
            return tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_start")
        return tags.get("dagster/partition")

    def generates(run):
        if runs.STAGE_TAG in run.tags:
            return run.tags[runs.STAGE_TAG] == "generate"
        return bool({"answers", "summaries"} & {k.to_user_string() for k in run.asset_selection or ()})

    return [r for r in reversed(instance.get_runs()) if partition(r) == key and generates(r)]


def _gpu(instance):
    return instance.event_log_storage.get_concurrency_info("gpu")


def _step_window(instance, run_id: str, step: str) -> tuple[float, float]:
    """(start, end) timestamps of a step of a run."""
    records = [r for r in instance.all_logs(run_id) if r.step_key == step and r.dagster_event]
    starts = [r.timestamp for r in records if r.dagster_event.event_type_value == "STEP_START"]
    ends = [r.timestamp for r in records if r.dagster_event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE")]
    assert starts and ends, f"step {step} of run {run_id} did not run to an end"
    return min(starts), max(ends)


def _answers(state: Path, model: str = SLOW):
    return ArtifactStore(state / "artifacts").read_frame("answers", model, PAPER)


def _temporary_files(state: Path) -> list[Path]:
    return [p for p in state.rglob(".*.tmp")]


# ---- SIGKILL ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_mid_generation_costs_one_batch_and_never_blocks_the_next_run(state):
    state, data = state
    killed = Cli(state, data, (*RUN, SLOW), delay=1.5, name="killed")
    _until(lambda: _cached(state) >= 2 * BATCH, 300, "two batches cached", killed)
    killed.kill()
    cached_at_kill = _cached(state)
    with _instance(state) as instance:
        [dead] = _generate_runs(instance, SLOW)
        # The situation of the report: the dead run is STARTED for good and holds the only gpu slot.
        assert dead.status == dg.DagsterRunStatus.STARTED
        assert [slot.run_id for slot in _gpu(instance).claimed_slots] == [dead.run_id]
    # Cached per batch, so only whole batches are on disk.
    assert cached_at_kill % BATCH == 0 and 2 * BATCH <= cached_at_kill < QUESTIONS

    again = Cli(state, data, (*RUN, SLOW), delay=1.5, name="again")
    assert again.wait(timeout=600) == 0, again.output[-3000:]
    output = again.output
    assert f"cleaned up run {dead.run_id[:8]}" in output and f"its process {killed.process.pid} on" in output
    assert "is gone; marked it failed and freed pool 'gpu' (step answers)" in output

    with _instance(state) as instance:
        dead_now, new = _generate_runs(instance, SLOW)
        assert dead_now.status == dg.DagsterRunStatus.FAILURE
        assert new.status == dg.DagsterRunStatus.SUCCESS
        assert _gpu(instance).claimed_slots == [] and _gpu(instance).pending_steps == []
        start, _ = _step_window(instance, new.run_id, "answers")
        waited = start - instance.get_run_record_by_id(new.run_id).create_timestamp.timestamp()
    frame = _answers(state)
    hits = int(frame["cache_hit"].sum())
    # Every answer finished before the kill was reused; only the batches after it were generated.
    assert len(frame) == QUESTIONS and (frame["error"] == "").all()
    assert hits == cached_at_kill
    print(f"\nSIGKILL: {cached_at_kill}/{QUESTIONS} answers cached at the kill; the next run redid "
          f"{QUESTIONS - hits} (the batch in flight and the ones after it), its answers step started "
          f"{waited:.1f} s after its run was created; whole re-run {time.monotonic() - again.started:.0f} s")
    assert waited < 60  # seconds, not the 9+ minutes of a slot held by a dead run


# ---- SIGINT / SIGTERM -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_cancels_the_run_frees_its_slots_and_says_what_is_left(state, sig):
    state, data = state
    cli = Cli(state, data, (*RUN, SLOW), delay=1.5, name="interrupted")
    _until(lambda: _cached(state) >= BATCH, 300, "a batch cached", cli)
    if sig == signal.SIGINT:
        os.killpg(cli.process.pid, sig)  # what Ctrl-C does: the whole foreground group
    else:
        cli.process.send_signal(sig)
    assert cli.wait(timeout=120) == 128 + sig.value, cli.output[-3000:]
    output = cli.output
    assert f"Interrupted by {sig.name}." in output
    assert f"canceled  generate: {SLOW}|{PAPER}" in output and "its pool slots freed" in output
    assert "not run   leaderboard" in output
    with _instance(state) as instance:
        [run] = _generate_runs(instance, SLOW)
        assert run.status == dg.DagsterRunStatus.CANCELED
        assert _gpu(instance).claimed_slots == [] and _gpu(instance).pending_steps == []
    assert _temporary_files(state) == []
    assert not ArtifactStore(state / "artifacts").exists("answers", SLOW, PAPER)  # only once complete
    assert BATCH <= _cached(state) < QUESTIONS  # ... but its finished batches are kept


# ---- waiting on a live holder, which then dies ------------------------------------------------------
@pytest.mark.slow
def test_a_waiting_step_names_the_holder_and_goes_on_within_seconds_when_it_dies(state):
    state, data = state
    holder = Cli(state, data, (*RUN, SLOW), delay=2.0, name="holder")
    _until(lambda: _cached(state) >= BATCH, 300, "the holder generating", holder)
    waiter = Cli(state, data, (*RUN, SLOW_LEAD), delay=0.1, name="waiter")
    with _instance(state) as instance:
        [held] = _generate_runs(instance, SLOW)
        _until(lambda: "waiting for pool 'gpu'" in waiter.output, 240, "the waiter saying it waits", waiter)
        output = waiter.output
        assert f"held by run {held.run_id[:8]} (step answers" in output
        assert f"pid {holder.process.pid} on {runs.HOST} (alive" in output and f"kill {holder.process.pid}" in output
        killed_at = time.time()
        holder.kill()
        assert waiter.wait(timeout=300) == 0, waiter.output[-3000:]
        assert f"cleaned up run {held.run_id[:8]}" in waiter.output
        [lead] = _generate_runs(instance, SLOW_LEAD)
        start, _ = _step_window(instance, lead.run_id, "summaries")
        assert _gpu(instance).claimed_slots == []
    print(f"\nholder killed while the waiter waited: the waiter's step started {start - killed_at:.1f} s later")
    assert start - killed_at < 60


# ---- CLI beside the daemon --------------------------------------------------------------------------
def _automation_ticked(instance) -> bool:
    for state in instance.all_instigator_state():
        if state.instigator_name == "automation_sensor":
            return bool(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1))
    return False


@contextmanager
def _daemon(state: Path, data: Path, delay: float):
    """`dagster-daemon run` on the state's instance with the project's workspace; killed with its children."""
    log = (state.parent / "daemon.log").open("w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                               env=_env(state, data, delay), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        yield process
    finally:
        # Dagster processes ignore SIGTERM for a while: a short grace period, then SIGKILL.
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 30)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=grace)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        try:
            os.killpg(process.pid, signal.SIGKILL)  # code server and run workers left in the group
        except ProcessLookupError:
            pass
        log.close()


@pytest.mark.slow
def test_cli_and_daemon_share_one_instance_without_locks_or_duplicate_generation(state):
    state, data = state
    (state / "dagster" / "dagster.yaml").write_text(INSTANCE_CONFIG, encoding="utf-8")  # run monitoring on
    _register(data, TEST_MODELS[1])
    with _daemon(state, data, delay=3.0), _instance(state) as instance:
        # As with `make ui` running: a model registered after the automation's first look is generated
        # on its own (the registry sensor adds its partition, the automation sensor requests the run).
        _until(lambda: _automation_ticked(instance), 300, "the automation sensor's first tick", poll=2)
        _register(data, *TEST_MODELS)
        daemon_run = _until(
            lambda: next((r for r in _generate_runs(instance, SLOW) if r.status == dg.DagsterRunStatus.STARTED
                          and runs.LAUNCHED_BY_TAG not in r.tags), None),
            420, "the daemon launching the generation", poll=2)
        cli = Cli(state, data, (*RUN, SLOW), delay=3.0, name="cli")
        assert cli.wait(timeout=600) == 0, cli.output[-3000:]
        _until(lambda: instance.get_run_by_id(daemon_run.run_id).is_finished, 300, "the daemon run ending", poll=2)
        daemon_log = (state.parent / "daemon.log").read_text(errors="replace")
        assert instance.get_run_by_id(daemon_run.run_id).status == dg.DagsterRunStatus.SUCCESS, daemon_log[-3000:]
        cli_run = next(r for r in _generate_runs(instance, SLOW) if r.tags.get(runs.LAUNCHED_BY_TAG) == "cli")
        assert cli_run.status == dg.DagsterRunStatus.SUCCESS
        # Pools across both: the two answers steps never overlapped.
        windows = sorted(_step_window(instance, r.run_id, "answers") for r in (daemon_run, cli_run))
        assert windows[0][1] <= windows[1][0], windows
        # No duplicated generation: 8 answers generated once in all; the later step read them from the cache.
        generated = 0
        for record in instance.fetch_materializations(dg.AssetKey("answers"), limit=100).records:
            metadata = record.asset_materialization.metadata
            generated += metadata["rows"].value - metadata["cache_hits"].value
        assert generated == QUESTIONS
    for text in (cli.output, daemon_log):
        assert "database is locked" not in text
    print(f"\nCLI + daemon: answers steps at {windows}; {generated} answers generated in all")


# ---- doctor (in-process, fast) ------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_doctor_lists_stale_state_and_fixes_what_is_safe(state_dir, monkeypatch, capsys):
    from rag_pipeline.cli import main
    from rag_pipeline.defs.runner import get_instance

    monkeypatch.setenv("DAGSTER_HOME", str(state_dir / "dagster"))
    instance = get_instance()
    assert instance.run_monitoring_enabled  # written by runner.INSTANCE_CONFIG
    storage = instance.event_log_storage
    storage.set_concurrency_slots("gpu", 1)

    def fake_run(tags: dict) -> str:
        run = instance.create_run_for_job(dg.GraphDefinition("job").to_job(), tags=tags)
        instance.report_dagster_event(dg.DagsterEvent("PIPELINE_START", job_name="job"), run_id=run.run_id)
        return run.run_id

    dead = fake_run({**runs.owner_tags(), runs.PID_TAG: str(_dead_pid()), runs.STAGE_TAG: "generate"})
    alive = fake_run(runs.owner_tags())
    far = fake_run({**runs.owner_tags(), runs.HOST_TAG: "another-host", runs.HEARTBEAT_TAG: "2020-01-01T00:00:00+00:00"})
    storage.claim_concurrency_slot("gpu", dead, "answers")
    leftover = state_dir / "artifacts" / "answers" / ".x.parquet.abc123.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half a file")

    assert main(["doctor"]) == 1
    listing = capsys.readouterr().out
    assert f"run {dead[:8]} is stale: its process" in listing and "is gone" in listing
    assert f"run {far[:8]} is stale: no heartbeat from pid" in listing and "another-host" in listing
    assert f"gpu: limit 1, held by run {dead[:8]} (step answers)" in listing
    assert alive[:8] in listing and f"run {alive[:8]} is stale" not in listing
    assert str(leftover) in listing

    assert main(["doctor", "--fix"]) == 1  # the temporary file stays while a live run goes on
    fixed = capsys.readouterr().out
    assert f"cleaned up run {dead[:8]}" in fixed and "freed pool 'gpu' (step answers)" in fixed
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(far).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED  # a live run is never touched
    assert storage.get_concurrency_info("gpu").claimed_slots == []
    assert leftover.exists()  # a live run is in progress: it may be writing it
    assert "Now: " in fixed and "temporary file" in fixed

    assert main(["doctor", "--free", alive[:8]]) == 0
    assert "still alive" in capsys.readouterr().out
    assert main(["doctor", "--fix"]) == 0 and not leftover.exists()
    assert "Now: healthy" in capsys.readouterr().out


def test_runs_that_ended_but_hold_slots_are_freed(state_dir, monkeypatch, capsys):
    from rag_pipeline.cli import main
    from rag_pipeline.defs.runner import get_instance

    monkeypatch.setenv("DAGSTER_HOME", str(state_dir / "dagster"))
    instance = get_instance()
    instance.event_log_storage.set_concurrency_slots("gpu", 1)
    run = instance.create_run_for_job(dg.GraphDefinition("job").to_job())
    instance.report_run_failed(run, "crashed")
    instance.event_log_storage.claim_concurrency_slot("gpu", run.run_id, "answers")
    assert main(["doctor"]) == 1 and f"run {run.run_id[:8]} ended but still holds pool slots" in capsys.readouterr().out
    assert main(["doctor", "--fix"]) == 0
    assert instance.event_log_storage.get_concurrency_info("gpu").claimed_slots == []
