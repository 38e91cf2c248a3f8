"""Runs and the processes that own them: nothing a dead run held may block the next one.

Every run that uses the state (`StateResource`, so CLI and daemon runs alike) records its process as
run tags (pid, host, the process's start time, so a reused pid is not taken for the owner) and
refreshes a heartbeat tag every `HEARTBEAT_S` (`RunSupervisor`). A run is *stale* when its process is
gone (same host) or, seen from another host, its heartbeat stopped `HEARTBEAT_STALE_S` ago.

- Before a run can wait on a pool, and again while one of its steps waits, stale runs are marked
  failed and their pool slots freed (`cleanup_stale_runs`), each with a line saying which run and why.
- A waiting step says which run holds the slot, since when, and how to free it (`waiting_message`).
- SIGINT / SIGTERM in the CLI cancel the run and free its slots (`cancel_on_signals`, `cancel_runs`).
- `rag-pipeline doctor` lists runs, pools, leaked slots and temporary files, and fixes what is safe.

Daemon-launched runs also have Dagster's own safety nets: the code server fails a run whose worker
process died, and run monitoring (`run_monitoring` in dagster.yaml, see `runner.INSTANCE_CONFIG`)
frees the slots of ended runs and times out runs stuck starting or canceling.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

# Not exported by `dagster`: the failure reason the UI shows for a run whose process died.
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

PID_TAG = "rag_pipeline/pid"
HOST_TAG = "rag_pipeline/host"
PROCESS_START_TAG = "rag_pipeline/process_start"  # /proc start time: a reused pid is another process
HEARTBEAT_TAG = "rag_pipeline/heartbeat"
# The run the owner tags were written for: a re-execution copies its parent's tags, which then name
# the parent's process, not its own, until the new run records its owner.
OWNER_RUN_TAG = "rag_pipeline/owner_run"
SESSION_TAG = "rag_pipeline/session"  # one CLI invocation: what it finished, what it did not
STAGE_TAG = "rag_pipeline/stage"
LAUNCHED_BY_TAG = "rag_pipeline/launched_by"

HEARTBEAT_S = 15.0
HEARTBEAT_STALE_S = 120.0  # only for owners on another host: a local owner is checked by its pid
POLL_S = 2.0  # how often a run looks at its own waiting steps
REPORT_EVERY_S = 60.0  # a step still waiting says so again this often
CLEANUP_EVERY_S = 5.0

Report = Callable[[str], None]


# ---- this process -------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime | None = None) -> str:
    return (moment or _now()).isoformat(timespec="seconds")


def _clock(moment: datetime | float | None) -> str:
    if moment is None:
        return "?"
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], start time is [19]); None if absent."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" where /proc is not available)."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else ""


HOST = socket.gethostname()


def owner_tags() -> dict[str, str]:
    """The tags that name this process as a run's owner, with a first heartbeat."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: HOST, PROCESS_START_TAG: process_start(pid), HEARTBEAT_TAG: _stamp()}


def process_alive(pid: int, started: str = "") -> bool:
    """Whether process `pid` of this host still runs and is the one that started at `started`."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _proc_stat(pid)
    if fields is None:
        return not Path("/proc").is_dir()  # no /proc (not Linux): trust kill(0)
    if fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return not started or fields[19] == started


# ---- reading a run's owner ----------------------------------------------------------------------
@dataclass(frozen=True)
class RunView:
    """One run as `doctor` and the messages show it."""

    run: dg.DagsterRun
    pid: int | None
    host: str
    heartbeat: datetime | None
    alive: bool | None  # None: cannot tell from here (no owner recorded, or another host)
    stale_reason: str  # "" unless the run is stale

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def short_id(self) -> str:
        return self.run.run_id[:8]

    def what(self) -> str:
        """What the run materializes and who launched it, e.g. "answers m|p, launched by cli"."""
        tags = self.run.tags
        selection = ([tags[STAGE_TAG]] if STAGE_TAG in tags else
                     sorted(key.to_user_string() for key in (self.run.asset_selection or ())) or [self.run.job_name])
        partition = tags.get("dagster/partition") or (
            f"{tags.get('dagster/asset_partition_range_start')}…{tags.get('dagster/asset_partition_range_end')}"
            if "dagster/asset_partition_range_start" in tags else ""
        )
        launched = tags.get(LAUNCHED_BY_TAG) or (
            f"sensor {tags['dagster/sensor_name']}" if "dagster/sensor_name" in tags
            else "backfill" if "dagster/backfill" in tags else "the UI or daemon"
        )
        return f"{', '.join(selection)}{' ' + partition if partition else ''}, launched by {launched}"

    def owner(self) -> str:
        if self.pid is None:
            return "owner not recorded"
        state = {True: "alive", False: "gone", None: "not checkable from here"}[self.alive]
        beat = f", heartbeat {_clock(self.heartbeat)}" if self.heartbeat else ""
        return f"pid {self.pid} on {self.host} ({state}{beat})"


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def view(run: dg.DagsterRun, now: datetime | None = None) -> RunView:
    now = now or _now()
    tags = run.tags
    heartbeat = _parse_time(tags.get(HEARTBEAT_TAG))
    try:
        pid = int(tags[PID_TAG])
    except (KeyError, ValueError):
        pid = None
    if pid is None or tags.get(OWNER_RUN_TAG, run.run_id) != run.run_id or run.status == dg.DagsterRunStatus.QUEUED:
        return RunView(run, None, "", None, None, "")  # no process owns it (yet): Dagster's run monitoring watches it
    host = tags.get(HOST_TAG, "")
    if run.is_finished:
        return RunView(run, pid, host, heartbeat, None, "")
    if host == HOST:
        alive = process_alive(pid, tags.get(PROCESS_START_TAG, ""))
        reason = "" if alive else f"its process {pid} on {host} is gone"
        return RunView(run, pid, host, heartbeat, alive, reason)
    age = (now - heartbeat).total_seconds() if heartbeat else None
    reason = ""
    if age is None or age > HEARTBEAT_STALE_S:
        reason = f"no heartbeat from pid {pid} on {host} since {_clock(heartbeat)}"
    return RunView(run, pid, host, heartbeat, None, reason)


def unfinished_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES)))


# ---- pools --------------------------------------------------------------------------------------
def pool_infos(instance: dg.DagsterInstance) -> dict:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    return dict(storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())))


def held_slots(instance: dg.DagsterInstance, run_id: str, infos: dict | None = None) -> list[tuple[str, str]]:
    """(pool, step) of every slot `run_id` holds."""
    infos = pool_infos(instance) if infos is None else infos
    return [(pool, slot.step_key) for pool, info in infos.items() for slot in info.claimed_slots if slot.run_id == run_id]


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    held = held_slots(instance, run_id)
    if instance.event_log_storage.supports_global_concurrency_limits:
        # Dagster's own slot release: also drops the run's queued claims and assigns the freed slots.
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return held


def _slots_text(slots: list[tuple[str, str]]) -> str:
    if not slots:
        return "it held no pool slot"
    return "freed " + ", ".join(f"pool {pool!r} (step {step})" for pool, step in slots)


# ---- cleanup ------------------------------------------------------------------------------------
def cleanup_stale_runs(instance: dg.DagsterInstance, report: Report, by: str = "") -> list[str]:
    """Mark every stale run failed and free its pool slots; one `report` line per run. Returns their ids."""
    cleaned = []
    for run in unfinished_runs(instance):
        seen = view(run)
        if not seen.stale_reason:
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.is_finished:
            continue  # another process got there first
        instance.report_run_failed(
            current,
            f"Marked failed{' by ' + by if by else ''}: {seen.stale_reason}.",
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )
        slots = _free_slots(instance, run.run_id)
        report(f"cleaned up run {seen.short_id} ({seen.what()}): {seen.stale_reason}; marked it failed and {_slots_text(slots)}")
        cleaned.append(run.run_id)
    return cleaned


def free_slots_of_finished_runs(instance: dg.DagsterInstance, report: Report) -> list[str]:
    """Free slots still held by runs that ended (run monitoring does this in the daemon; without it, we do)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    freed = []
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            slots = _free_slots(instance, run_id)
            status = run.status.value if run else "deleted"
            held = _slots_text(slots) if slots else "dropped its queued claims"
            report(f"run {run_id[:8]} ended ({status}) without releasing its pool claims: {held}")
            freed.append(run_id)
    return freed


def free_run(instance: dg.DagsterInstance, run_id: str, report: Report) -> bool:
    """Force: mark `run_id` (a prefix will do) failed if unfinished and free its slots."""
    matches = [r for r in instance.get_runs(limit=10_000) if r.run_id.startswith(run_id)]
    if len(matches) != 1:
        report(f"no single run matches {run_id!r} ({len(matches)} do)")
        return False
    run = matches[0]
    seen = view(run)
    if not run.is_finished:
        if seen.alive:
            report(f"warning: run {seen.short_id}'s process {seen.pid} is still alive; it may go on writing")
        instance.report_run_failed(run, "Marked failed by `rag-pipeline doctor --free`.")
    slots = _free_slots(instance, run.run_id)
    report(f"run {seen.short_id} ({seen.what()}): marked failed and {_slots_text(slots)}")
    return True


# ---- waiting ------------------------------------------------------------------------------------
def _ahead(info, waiting: list) -> tuple[list, list]:
    """Other runs ahead of the `waiting` steps of one run: (slots they hold, their earlier queued claims).
    Empty when only the run's own steps are ahead: its steps simply take turns."""
    mine = waiting[0].run_id
    first = min(p.enqueued_timestamp for p in waiting)
    holders = [slot for slot in info.claimed_slots if slot.run_id != mine]
    queued = [p for p in info.pending_steps if p.run_id != mine and p.enqueued_timestamp < first
              and not any(s.run_id == p.run_id and s.step_key == p.step_key for s in info.claimed_slots)]
    return holders, queued


def waiting_message(pool: str, info, waiting: list, views: dict[str, RunView]) -> str:
    """Which run holds the slot the `waiting` steps (pending claims of one run) wait for, since when,
    and how to free it."""
    holders, queued = _ahead(info, waiting)
    first = min(p.enqueued_timestamp for p in waiting)
    limit = info.limit if info.limit is not None else info.slot_count
    steps = ", ".join(sorted(p.step_key for p in waiting))
    head = f"step{'s' if len(waiting) > 1 else ''} {steps} waiting for pool {pool!r} (limit {limit}) since {_clock(first)}"
    parts = []
    for slot in holders:
        holder = views.get(slot.run_id)
        assigned = next((p.assigned_timestamp for p in info.pending_steps
                         if p.run_id == slot.run_id and p.step_key == slot.step_key), None)
        if holder is None:
            parts.append(f"held by run {slot.run_id[:8]} (step {slot.step_key}, since {_clock(assigned)}), which has "
                         "ended: free it with `rag-pipeline doctor --fix`")
            continue
        if holder.alive and holder.run.tags.get(LAUNCHED_BY_TAG) == "cli":
            how = f"stop it with `kill {holder.pid}` (its run is canceled and the slot freed)"
        elif holder.alive or holder.pid is None:
            how = "terminate it from the UI's Runs page"
        else:
            how = f"`rag-pipeline doctor --free {holder.short_id}` once its process is surely gone"
        parts.append(f"held by run {holder.short_id} (step {slot.step_key}, since {_clock(assigned)}; {holder.what()}; "
                     f"{holder.owner()}); it frees the slot when that step ends, or {how}")
    if queued:
        parts.append("queued ahead: " + ", ".join(f"run {p.run_id[:8]} (step {p.step_key})" for p in queued))
    return f"{head}: " + "; ".join(parts)


class RunSupervisor:
    """For one run, in its own process: the heartbeat, and the watch over its waiting steps.

    Runs a daemon thread; a busy database only delays a tick, it never fails the run.
    """

    def __init__(self, instance: dg.DagsterInstance, run_id: str, report: Report):
        self.instance, self.run_id, self.report = instance, run_id, report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"rag-pipeline-run-{run_id[:8]}", daemon=True)
        self._reported: dict[str, float] = {}
        self._beat = self._cleaned = time.monotonic()

    def start(self) -> RunSupervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            with suppress(Exception):  # e.g. "database is locked": the next tick retries
                self.tick()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._beat >= HEARTBEAT_S:
            self.instance.add_run_tags(self.run_id, {HEARTBEAT_TAG: _stamp()})
            self._beat = now
        infos = pool_infos(self.instance)
        blocked = {pool: [p for p in info.pending_steps if p.run_id == self.run_id and p.assigned_timestamp is None]
                   for pool, info in infos.items()}
        blocked = {pool: waiting for pool, waiting in blocked.items() if waiting and any(_ahead(infos[pool], waiting))}
        if not blocked:
            return
        if now - self._cleaned >= CLEANUP_EVERY_S:
            self._cleaned = now
            if cleanup_stale_runs(self.instance, self.report, by=f"run {self.run_id[:8]}"):
                return  # the freed slot goes to the queue; the step claims it at its next check
        for pool, waiting in blocked.items():
            last = self._reported.get(pool)
            if last is None or now - last >= REPORT_EVERY_S:
                self._reported[pool] = now
                views = {run.run_id: view(run) for run in unfinished_runs(self.instance)}
                self.report(waiting_message(pool, infos[pool], waiting, views))


# A celery worker process (rag_pipeline.defs.celery_worker) executes single steps of runs that another
# process orchestrates (`rag-pipeline run`, the UI's run worker): it is not their owner, and its
# life says nothing about theirs. The orchestrator's pid is in the run's tags from its creation.
_STEP_WORKER = False


def mark_step_worker() -> None:
    global _STEP_WORKER
    _STEP_WORKER = True


def in_step_worker() -> bool:
    return _STEP_WORKER


def supervise_run(instance: dg.DagsterInstance, run: dg.DagsterRun, report: Report) -> RunSupervisor:
    """Record this process as `run`'s owner, clean up after dead runs, then watch the run (heartbeat, waits).

    Called when a run initializes its resources, i.e. before any of its steps claims a pool slot.
    """
    mine = {**owner_tags(), OWNER_RUN_TAG: run.run_id}
    if any(run.tags.get(key) != mine[key] for key in (PID_TAG, HOST_TAG, OWNER_RUN_TAG)):
        instance.add_run_tags(run.run_id, mine)  # the CLI's runs carry the first three from their creation
    cleanup_stale_runs(instance, report, by=f"run {run.run_id[:8]}")
    return RunSupervisor(instance, run.run_id, report).start()


# ---- interrupts (the CLI) -----------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a CLI run; its Dagster runs are canceled and their slots freed."""

    def __init__(self, signal_name: str = "SIGINT"):
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        return 128 + getattr(signal, self.signal_name, signal.SIGINT).value


# This process's CLI invocation (SESSION_TAG), and the signals `cancel_on_signals` saw, in order.
SESSION = uuid.uuid4().hex[:12]
RECEIVED: list[str] = []


def own_unfinished_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: HOST}
    return list(instance.get_runs(filters=dg.RunsFilter(tags=tags, statuses=NOT_FINISHED_STATUSES)))


@contextmanager
def cancel_on_signals(instance: dg.DagsterInstance) -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted`, and mark this process's unfinished runs canceling.

    While Dagster executes a run it installs its own handler for both signals (it stops the run at a
    safe point); the signal-wakeup socket still tells a helper thread which signal arrived, and the
    thread marks the run canceling so that Dagster ends it canceled rather than failed.
    Outside a run, SIGTERM would otherwise end the process without any cleanup.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signo, frame):
        raise Interrupted(signal.Signals(signo).name)

    reader, writer = socket.socketpair()
    writer.setblocking(False)

    def watch() -> None:
        while True:
            try:
                data = reader.recv(16)
            except OSError:
                return
            if not data:
                return
            names = [signal.Signals(b).name for b in data if b in (signal.SIGINT, signal.SIGTERM)]
            if not names:
                continue
            RECEIVED.extend(names)
            with suppress(Exception):  # the main thread cancels the run afterwards anyway
                for run in own_unfinished_runs(instance):
                    if run.status != dg.DagsterRunStatus.CANCELING:
                        instance.report_run_canceling(run, f"{names[-1]} received: canceling the run")

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name="rag-pipeline-signals", daemon=True)
    watcher.start()
    try:
        for sig in previous:
            signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(previous_fd)
        writer.close()
        reader.shutdown(socket.SHUT_RDWR)
        watcher.join(timeout=5)
        reader.close()


def was_interrupted(result) -> bool:
    """Whether an in-process run ended as Dagster's "interrupted unexpectedly" failure (a signal that
    `cancel_on_signals` did not see, e.g. outside the CLI)."""
    for event in result.all_events:
        data = event.event_specific_data
        if event.is_run_failure and isinstance(data, JobFailureData):
            return data.failure_reason == RunFailureReason.UNEXPECTED_TERMINATION
    return False


def cancel_runs(instance: dg.DagsterInstance, run_ids: list[str], signal_name: str) -> list[str]:
    """Mark `run_ids` and this process's other unfinished runs canceled, and free their slots."""
    canceled = []
    ids = list(dict.fromkeys([*run_ids, *(run.run_id for run in own_unfinished_runs(instance))]))
    for run_id in ids:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status == dg.DagsterRunStatus.SUCCESS:
            continue  # it finished before the signal stopped anything
        if run.status != dg.DagsterRunStatus.CANCELED:
            # Unfinished, or failed by Dagster as "interrupted unexpectedly" before it saw the canceling mark.
            instance.report_run_canceled(run, f"Canceled: {signal_name} received by rag-pipeline (pid {os.getpid()}).")
        _free_slots(instance, run_id)
        canceled.append(run_id)
    return canceled


def session_runs(instance: dg.DagsterInstance, session: str) -> list[dg.DagsterRun]:
    """The runs of one CLI invocation, oldest first."""
    return list(reversed(instance.get_runs(filters=dg.RunsFilter(tags={SESSION_TAG: session}))))


# ---- doctor -------------------------------------------------------------------------------------
def temporary_files(state_root: Path) -> list[Path]:
    """Temporary files of atomic writes (`.name.XXXX.tmp`) left by a killed writer."""
    return sorted(p for p in state_root.rglob(".*.tmp") if p.is_file() and "dagster" not in p.relative_to(state_root).parts[:1])


@dataclass
class Diagnosis:
    runs: list[RunView]
    infos: dict
    leaked: list[str]  # runs that ended but still hold slots
    temporary: list[Path]
    monitoring: bool

    @property
    def stale(self) -> list[RunView]:
        return [seen for seen in self.runs if seen.stale_reason]

    def problems(self) -> list[str]:
        found = [f"run {seen.short_id} is stale: {seen.stale_reason}" for seen in self.stale]
        found += [f"run {run_id[:8]} ended but still holds pool slots" for run_id in self.leaked]
        found += [f"temporary file left by a killed writer: {path}" for path in self.temporary]
        if not self.monitoring:
            found.append("run monitoring is not enabled in dagster.yaml (daemon-launched runs are not watched)")
        return found


def diagnose(instance: dg.DagsterInstance, state_root: Path) -> Diagnosis:
    runs = [view(run) for run in unfinished_runs(instance)]
    storage = instance.event_log_storage
    leaked = []
    if storage.supports_global_concurrency_limits:
        for run_id in sorted(storage.get_concurrency_run_ids()):
            run = instance.get_run_by_id(run_id)
            if (run is None or run.is_finished) and held_slots(instance, run_id):
                leaked.append(run_id)
    return Diagnosis(runs, pool_infos(instance), leaked, temporary_files(state_root), instance.run_monitoring_enabled)


def format_diagnosis(diagnosis: Diagnosis) -> str:
    lines = [f"Runs in progress: {len(diagnosis.runs)}"]
    for seen in diagnosis.runs:
        state = f"STALE: {seen.stale_reason}" if seen.stale_reason else seen.owner()
        lines.append(f"  {seen.short_id}  {seen.run.status.value:<9} {seen.what()}; {state}")
    lines.append("Pools:")
    if not diagnosis.infos:
        lines.append("  none used yet")
    for pool, info in diagnosis.infos.items():
        limit = info.limit if info.limit is not None else info.slot_count
        held = [f"run {slot.run_id[:8]} (step {slot.step_key})" for slot in info.claimed_slots]
        waiting = [f"run {p.run_id[:8]} (step {p.step_key}, since {_clock(p.enqueued_timestamp)})"
                   for p in info.pending_steps if p.assigned_timestamp is None]
        lines.append(f"  {pool}: limit {limit}, held by {', '.join(held) or 'nobody'}"
                     + (f"; waiting: {', '.join(waiting)}" if waiting else ""))
    problems = diagnosis.problems()
    lines.append("Problems: " + ("none" if not problems else ""))
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


def safe_fixes(instance: dg.DagsterInstance, diagnosis: Diagnosis, report: Report, home: Path) -> None:
    """What `doctor --fix` does: all of it is safe while live runs go on."""
    cleanup_stale_runs(instance, report, by="rag-pipeline doctor")
    free_slots_of_finished_runs(instance, report)
    live = [seen for seen in diagnosis.runs if not seen.stale_reason]
    old = time.time() - 3600
    for path in diagnosis.temporary:
        # A live run may be writing one right now; an hour-old one belongs to no running write.
        if not live or path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
            report(f"removed temporary file {path}")
        else:
            report(f"kept {path}: runs are in progress (run doctor --fix again when they end)")
    if not diagnosis.monitoring:
        from rag_pipeline.defs.runner import RUN_MONITORING_CONFIG

        config = home / "dagster.yaml"
        text = config.read_text(encoding="utf-8") if config.exists() else ""
        if "run_monitoring:" not in text:
            config.write_text(text.rstrip("\n") + "\n" + RUN_MONITORING_CONFIG, encoding="utf-8")
            report(f"enabled run monitoring in {config} (restart `make ui` to apply it)")
