"""Papers ingested side by side: `rag-pipeline run --jobs N` converts and chunks N papers at once, one
run per paper in processes of their own, and indexes them one after another in its own process
(one writer for the embedded Chroma); the result is the same as one paper after another."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from rag_pipeline import contracts as c
from rag_pipeline.defs import runs
from rag_pipeline.defs.executors import ExecutorConfigError
from rag_pipeline.defs.runner import (
    GENERATION_SELECTION,
    INGEST_SELECTION,
    JOBS_ENV,
    MIN_CORES_SIDE_BY_SIDE,
    default_jobs,
    parallel_allowed,
    side_by_side,
)
from rag_pipeline.settings import REPO_ROOT
from rag_pipeline_tests.defs.test_celery_executor import _artifacts, _env
from rag_pipeline_tests.defs.test_living_pipeline import _edit_yaml, _keep
from rag_pipeline_tests.suite_data import SUITE_DATA

PAPERS = ["demo-sparse-routing", "demo-rerank-study"]
BROKEN = "broken-pdf"
MODEL = "top-chunk"


def test_only_the_steps_without_a_model_or_chroma_run_side_by_side():
    from rag_pipeline.definitions import defs

    assert side_by_side(defs, INGEST_SELECTION) == [c.PAPER_PDF.name, c.PAPER_MARKDOWN.name, c.PAPER_TEXT.name, c.PAPER_CHUNKS.name]
    assert side_by_side(defs, GENERATION_SELECTION) == []  # a model is loaded once, in one process
    assert side_by_side(defs, [c.PAPER_INDEX.name, c.PAPER_PDF.name]) == []  # a prefix, in graph order
    assert parallel_allowed(defs, None)
    assert not parallel_allowed(defs, dict(defs.resources))  # Python-side resources cannot reach another process
    assert not parallel_allowed(dg.Definitions(assets=list(defs.assets)), None)


def test_jobs_come_from_the_environment_or_the_cores(monkeypatch):
    monkeypatch.delenv(JOBS_ENV, raising=False)
    cores = len(os.sched_getaffinity(0))
    # Half the cores from 4 on; below, one after another (side by side measured no faster on 2 cores).
    assert default_jobs() == (cores // 2 if cores >= MIN_CORES_SIDE_BY_SIDE else 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert default_jobs() == 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert default_jobs() == 1
    monkeypatch.setenv(JOBS_ENV, "3")
    assert default_jobs() == 3
    for bad in ("two", "0"):
        monkeypatch.setenv(JOBS_ENV, bad)
        with pytest.raises(ExecutorConfigError, match=JOBS_ENV):
            default_jobs()


def test_the_cli_refuses_a_jobs_count_below_one(capsys):
    from rag_pipeline.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--papers", PAPERS[0], "--jobs", "0"])
    assert "--jobs" in capsys.readouterr().err


def _data(target: Path) -> Path:
    shutil.copytree(SUITE_DATA, target)
    _keep(target / "papers.yaml", "papers", "id", PAPERS)
    broken = target / "not-a-pdf.pdf"
    broken.write_text("this is not a PDF", encoding="utf-8")
    _edit_yaml(target / "papers.yaml", lambda papers: papers["papers"].append(
        {"id": BROKEN, "pdf": str(broken), "title": "A broken file", "collection": "demo"}))
    _keep(target / "models.yaml", "models", "name", [MODEL])
    _edit_yaml(target / "pipeline.yaml", lambda config: (config["judge"].update(enabled=False),
                                                         config["chunking"].update(chunk_size=3000)))
    return target


def _run(state: Path, data: Path, jobs: int) -> str:
    done = subprocess.run([sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", ",".join([*PAPERS, BROKEN]),
                           "--models", MODEL, "--no-judge", "--jobs", str(jobs)],
                          env=_env(state, data), cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]  # a failed paper is reported, the others carry on
    return done.stdout


@pytest.mark.slow
def test_side_by_side_ingest_stores_what_one_after_another_does(tmp_path):
    data = _data(tmp_path / "data")
    one, two = tmp_path / "jobs1", tmp_path / "jobs2"
    _run(one, data, 1)
    output = _run(two, data, 2)
    # The broken file fails its own partition, with its name and why; the other papers carry on.
    assert "1 partition(s) failed" in output and f"{BROKEN}: paper_pdf" in output
    assert _artifacts(two) == _artifacts(one)
    with dg.DagsterInstance.from_config(str(two / "dagster")) as instance:
        all_runs = instance.get_runs()
        cli_pid = {r.tags[runs.PID_TAG] for r in all_runs if r.tags.get(runs.STAGE_TAG) == "generate"}
        ingest_runs = [r for r in all_runs if r.tags.get(runs.STAGE_TAG) == "ingest"]
        side = [r for r in ingest_runs if r.tags[runs.PID_TAG] not in cli_pid]
        rest = [r for r in ingest_runs if r.tags[runs.PID_TAG] in cli_pid]
        side_steps = {e.step_key for r in side for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_START)}
        rest_steps = {e.step_key for r in rest for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_START)}
    # One run per paper for the steps side by side, from two processes other than the CLI's; then
    # indexing and retrieval in the CLI's process, for the papers that got through.
    assert len(cli_pid) == 1
    assert sorted(r.tags["dagster/partition"] for r in side) == sorted([*PAPERS, BROKEN])
    assert len({r.tags[runs.PID_TAG] for r in side}) == 2
    assert {c.PAPER_PDF.name, c.PAPER_CHUNKS.name} <= side_steps and c.PAPER_INDEX.name not in side_steps
    assert sorted(r.tags["dagster/partition"] for r in rest) == sorted(PAPERS)
    assert {c.PAPER_INDEX.name, c.RETRIEVALS.name} <= rest_steps and c.PAPER_PDF.name not in rest_steps
    assert len({r.tags[runs.SESSION_TAG] for r in ingest_runs}) == 1  # one invocation: what an interrupt left is found
