"""What a change costs: the CLI's run (`rag-pipeline run`, which runs only stale or missing partitions)
after each kind of edit, on a private copy of data/ and a fresh state; prints one JSON object.

Scenarios, in order, each on the state the previous one left:
1. cold:          the three demo papers × the extractive baselines, from nothing;
2. no-op:         the same command again, nothing edited;
3. add model:     an extractive model appended to models.yaml;
4. edit decoding: one model's ``decoding`` edited (its seed);
5. edit chunking: ``chunking.chunk_size`` 800 → 600 in pipeline.yaml.

For each: wall seconds, step executions (by asset) and how many of them were ingest steps.
Targets: no-op < 5% of cold; adding a model runs 0 ingest steps; an edit runs only the partitions
it touches. The judge is off (its 0.5B LLM dominates CPU time and is not what is measured here).

    .venv/bin/python benchmarks/incremental.py

Only the JSON goes to stdout.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MODELS = ["lead-3", "top-chunk"]
INGEST = {"paper_pdf", "paper_markdown", "paper_text", "paper_chunks", "paper_index", "retrievals", "retrieval_metrics"}


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="rag-incremental-"))
    data, state = workdir / "data", workdir / "state"
    shutil.copytree(REPO / "data", data)
    os.environ.update(RAG_PIPELINE_DATA=str(data), RAG_PIPELINE_HOME=str(state), DAGSTER_HOME=str(state / "dagster"))
    # graph mechanics with extractive models: no judge, and no query translation (an LLM load per run)
    _edit(data / "pipeline.yaml", lambda config: (config["judge"].update(enabled=False),
                                                  config["retrieval"].update(translate_with=None)))

    from rag_pipeline.datasets import load_papers
    from rag_pipeline.definitions import defs
    from rag_pipeline.defs.runner import get_instance, run_pipeline

    papers = [paper.id for paper in load_papers() if paper.collection == "demo"]
    instance = get_instance()
    models = list(MODELS)

    def run_ids() -> set[str]:
        return {run.run_id for run in instance.get_runs()}

    def steps_of(runs: set[str]) -> Counter:
        counts: Counter = Counter()
        for run_id in runs:
            for stats in instance.get_run_step_stats(run_id):
                counts[stats.step_key] += 1
        return counts

    def scenario(name: str) -> dict:
        before = run_ids()
        started = time.perf_counter()
        summary = run_pipeline(defs, instance, papers, models, judge=False, progress=False)
        seconds = time.perf_counter() - started
        steps = steps_of(run_ids() - before)
        return {"scenario": name, "seconds": round(seconds, 2), "step_executions": sum(steps.values()),
                "ingest_steps": sum(n for step, n in steps.items() if step in INGEST),
                "steps": dict(sorted(steps.items())), "failed": summary.failed}

    results = [scenario("cold"), scenario("no-op")]

    def add_model(registry):
        lead = next(m for m in registry["models"] if m["name"] == "lead-3")
        registry["models"].append({**lead, "name": "lead-2", "extractive": {"method": "lead", "sentences": 2}})
    _edit(data / "models.yaml", add_model)
    models.append("lead-2")
    results.append(scenario("add model"))

    def edit_decoding(registry):
        entry = next(m for m in registry["models"] if m["name"] == "top-chunk")
        entry["decoding"] = {"do_sample": False, "seed": 7}
    _edit(data / "models.yaml", edit_decoding)
    results.append(scenario("edit decoding"))

    _edit(data / "pipeline.yaml", lambda config: config["chunking"].update(chunk_size=600))
    results.append(scenario("edit chunking"))

    cold = results[0]["seconds"]
    print(json.dumps({
        "papers": papers, "models": models, "results": results,
        "targets": {
            "no_op_share_of_cold": round(results[1]["seconds"] / cold, 4) if cold else None,
            "no_op_under_5_percent": results[1]["seconds"] < 0.05 * cold,
            "add_model_ingest_steps": results[2]["ingest_steps"],
        },
        "environment": {"cpus": os.cpu_count(), "load": os.getloadavg(), "python": platform.python_version()},
    }, ensure_ascii=False, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
