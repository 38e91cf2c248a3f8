"""benchmarks/scale.py at a tiny scale, on the real PostgreSQL: what docs/scale.md quotes must keep
measuring the real thing (the sensor, the instance, the store) and keep running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rag_pipeline_tests.services import require_service

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "scale.py"
PER_PAPER_ASSETS, PER_PAIR_ASSETS = 8, 3  # ingest's 7 and the judgments; summaries, answers, metrics


def test_the_scale_benchmark_registers_materializes_and_counts_a_tiny_registry():
    admin_url = require_service("postgres")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.0004", "--parts", "registry,history,status,artifacts"],
        check=False, capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "RAG_PIPELINE_TEST_POSTGRES": admin_url})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    papers, models = result["papers"], result["models"]
    assert (papers, models) == (40, 2)  # 2000·√s papers, 50·√s models (at least 2)

    registry = result["registry"]
    assert registry["partitions_added"] == papers + models
    assert registry["steady_tick_result"] == "SkipReason"  # the second tick finds every input recorded
    assert registry["input_observations"] >= 2 * papers  # each paper's source and questions at least

    assert result["history"]["events"] == PER_PAPER_ASSETS * papers + PER_PAIR_ASSETS * papers * models
    assert result["status"]["paper_chunks"]["materialized"] == papers
    assert result["status"]["answers"]["materialized"] == papers * models

    artifacts = result["artifacts"]
    assert all(count >= 3 for count in artifacts["files_per_partition"].values())  # data, manifest, current.json
    assert artifacts["leaderboard_reads"]["sample_partitions"] > 0
