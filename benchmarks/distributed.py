"""One machine, several processes: the same work through `rag-pipeline run` three ways, each on a
fresh state and a private copy of data/; prints one JSON object.

The work: ingest of 12 PDFs (the six demo papers, each also registered under a second id, with its
questions) and generation with the two extractive models (lead-3 writes summaries, top-chunk
answers), judge off, then the leaderboard: 12 paper partitions, 24 model × paper partitions.

1. `in_process`:   `--jobs 1`, every run in the CLI's process, one partition after another (the
                   default before side-by-side ingest);
2. `side_by_side`: `--jobs N` (default: the cores), papers converted and chunked in N processes at
                   once; indexing, retrieval and generation stay in the CLI's process;
3. `celery`:       Dagster's celery executor on the local Redis with 2 workers — one process for
                   the `gpu` and `chroma` queues (models and the embedded Chroma), one for `cpu` —
                   and `--jobs N` (runs of several papers orchestrated side by side).

For each: wall seconds in all and per stage (first run start to last run end of the runs tagged
with that stage), runs, step executions, the ratio to in-process, and whether every stored ingest
artifact (PDF to retrieval metrics) has the same version as in-process.

    .venv/bin/python benchmarks/distributed.py [--jobs N] [--modes in_process,side_by_side,celery]

Only the JSON goes to stdout; each mode's CLI output is kept in the temporary directory it names.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # rag_pipeline_tests.celery_workers: the tests' own worker handling

MODELS = ["lead-3", "top-chunk"]
COPY_SUFFIX = "-b"
MODES = ("in_process", "side_by_side", "celery")
INGEST = ("paper_pdf", "paper_markdown", "paper_text", "paper_chunks", "paper_index", "retrievals", "retrieval_metrics")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dump(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def make_data(target: Path) -> list[str]:
    """data/ with the demo papers twice (the copy under `<id>-b`, same PDF, same questions and
    reference summary), only the extractive models, the judge off. Returns the 12 paper ids."""
    shutil.copytree(REPO / "data", target)
    papers = _load(target / "papers.yaml")
    demo = [dict(p) for p in papers["papers"] if p.get("collection") == "demo"]
    copies = [{**p, "id": p["id"] + COPY_SUFFIX, "pdf": str((target / p["pdf"]).resolve())} for p in demo]
    papers["papers"] = demo + copies
    _dump(target / "papers.yaml", papers)

    questions_path = target / "demo_corpus" / "questions.yaml"
    questions = _load(questions_path)
    originals = list(questions["questions"])
    for question in originals:
        paper = question["paper"] + COPY_SUFFIX
        questions["questions"].append({**question, "paper": paper, "id": question["id"].replace(question["paper"], paper, 1)})
    _dump(questions_path, questions)
    summaries_path = target / "demo_corpus" / "summaries.yaml"
    summaries = _load(summaries_path)
    summaries["summaries"].update({paper + COPY_SUFFIX: text for paper, text in list(summaries["summaries"].items())})
    _dump(summaries_path, summaries)

    models = _load(target / "models.yaml")
    models["models"] = [m for m in models["models"] if m["name"] in MODELS]
    _dump(target / "models.yaml", models)
    config = _load(target / "pipeline.yaml")
    config["judge"]["enabled"] = False
    config["retrieval"]["translate_with"] = None  # extractive models only: no LLM load for query translation
    _dump(target / "pipeline.yaml", config)
    return [p["id"] for p in papers["papers"]]


def _redis() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return "redis://127.0.0.1:6379/0"
    except OSError:
        return None


def _env(workdir: Path, data: Path, mode: str) -> dict:
    state = workdir / mode
    env = {**os.environ, "RAG_PIPELINE_HOME": str(state), "DAGSTER_HOME": str(state / "dagster"),
           "RAG_PIPELINE_DATA": str(data), "PYTHONUNBUFFERED": "1", "DAGSTER_DISABLE_TELEMETRY": "1"}
    for name in ("RAG_PIPELINE_EXECUTOR", "RAG_PIPELINE_CELERY_BROKER", "RAG_PIPELINE_CELERY_BACKEND", "RAG_PIPELINE_JOBS"):
        env.pop(name, None)
    return env


def run_mode(mode: str, workdir: Path, data: Path, papers: list[str], jobs: int) -> dict:
    from rag_pipeline_tests.celery_workers import celery_env, private_redis_url, start_worker, wait_ready

    env = _env(workdir, data, mode)
    workers = []
    if mode == "celery":
        broker = _redis()
        if broker is None:
            return {"skipped": "needs Redis at 127.0.0.1:6379"}
        env = celery_env(env, private_redis_url(broker))
        workers = [start_worker(f"models-{os.getpid()}", "gpu,chroma", 1, env, REPO, workdir),
                   start_worker(f"cpu-{os.getpid()}", "cpu", 1, env, REPO, workdir)]
    command = [sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", ",".join(papers), "--models", ",".join(MODELS),
               "--no-judge", "--jobs", str(1 if mode == "in_process" else jobs)]
    try:
        wait_ready(workers)  # not timed: a team's workers are up before the run
        started = time.monotonic()
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
        wall_s = time.monotonic() - started
    finally:
        for worker in workers:
            worker.stop()
    (workdir / f"{mode}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}", "tail": (done.stdout + done.stderr)[-2000:]}
    return {"wall_s": round(wall_s, 1), "jobs": 1 if mode == "in_process" else jobs,
            "workers": [f"{w.name.split('-')[0]}: -Q {w.queues} -c 1" for w in workers], **_runs(workdir / mode)}


def _runs(state: Path) -> dict:
    import dagster as dg

    from rag_pipeline.defs.runs import STAGE_TAG

    stages: dict[str, list[float]] = {}
    steps: Counter = Counter()
    failed = []
    with dg.DagsterInstance.from_config(str(state / "dagster")) as instance:
        for record in instance.get_run_records():
            run = record.dagster_run
            stage = run.tags.get(STAGE_TAG, "?")
            window = stages.setdefault(stage, [float("inf"), 0.0])
            window[0] = min(window[0], record.start_time or record.create_timestamp.timestamp())
            window[1] = max(window[1], record.end_time or 0.0)
            if run.status != dg.DagsterRunStatus.SUCCESS:
                failed.append(run.run_id)
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS):
                steps[entry.step_key] += 1
        runs = len(instance.get_run_records())
    return {"stage_s": {stage: round(end - start, 1) for stage, (start, end) in stages.items()},
            "runs": runs, "failed_runs": len(failed), "steps": sum(steps.values()), "steps_by_asset": dict(sorted(steps.items()))}


def _ingest_versions(state: Path) -> dict:
    from rag_pipeline.artifacts import ArtifactStore

    store = ArtifactStore(state / "artifacts")
    return {ref.label.split("@")[0]: ref.version for ref in store.current_refs() if ref.asset in INGEST}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}: expected some of {', '.join(MODES)}")

    workdir = Path(tempfile.mkdtemp(prefix="rag-distributed-"))
    papers = make_data(workdir / "data")
    results = {}
    for mode in modes:
        print(f"{mode} ...", file=sys.stderr, flush=True)
        results[mode] = run_mode(mode, workdir, workdir / "data", papers, args.jobs)
        print(f"{mode}: {results[mode].get('wall_s', results[mode])}", file=sys.stderr, flush=True)
    baseline = results.get("in_process", {})
    reference = _ingest_versions(workdir / "in_process") if "wall_s" in baseline else None
    for mode, result in results.items():
        if "wall_s" not in result:
            continue
        if "wall_s" in baseline:
            result["speedup_vs_in_process"] = round(baseline["wall_s"] / result["wall_s"], 2)
            result["stage_speedup_vs_in_process"] = {
                stage: round(baseline["stage_s"][stage] / seconds, 2)
                for stage, seconds in result["stage_s"].items() if seconds and stage in baseline["stage_s"]}
        if reference is not None:
            versions = _ingest_versions(workdir / mode)
            result["ingest_artifacts"] = len(versions)
            result["ingest_artifacts_identical_to_in_process"] = versions == reference
    print(json.dumps({
        "benchmark": "distributed",
        "papers": len(papers), "models": MODELS, "model_paper_partitions": len(papers) * len(MODELS),
        "results": results,
        "workdir": str(workdir),
        "environment": {"python": platform.python_version(), "cores": len(os.sched_getaffinity(0)),
                        "load_average": os.getloadavg(), "machine": platform.machine()},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
