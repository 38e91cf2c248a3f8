"""The `rag-pipeline` command line, run in-process on the demo corpus."""

import json

import pandas as pd

from rag_pipeline.cli import main
from rag_pipeline.settings import REPO_ROOT

PDF = REPO_ROOT / "data/demo_corpus/pdf/demo-rerank-study.pdf"


def test_ingest_then_retrieve(tmp_path, capsys):
    out = tmp_path / "doc"
    assert main(["ingest", str(PDF), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("markdown.md", "text.md", "sections.json", "chunks.parquet"):
        assert (out / name).exists(), name
    chunks = pd.read_parquet(out / "chunks.parquet")
    assert {"chunk_id", "text", "section", "start", "end"} <= set(chunks.columns)
    assert summary["n_chunks"] == len(chunks)
    sections = json.loads((out / "sections.json").read_text())
    assert sections["abstract"] and sections["conclusion"]

    assert main(["retrieve", str(out), "--question", "Какой реранкер использовали авторы?", "--top-k", "5", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert [row["rank"] for row in ranked] == [1, 2, 3, 4, 5]
    assert sum(row["kept"] for row in ranked) == 2
    assert {row["chunk_id"] for row in ranked} <= set(chunks["chunk_id"])
    scores = [row["vector_score"] for row in ranked]
    assert scores == sorted(scores, reverse=True)


def test_ingest_rejects_a_file_that_is_not_a_pdf(tmp_path, capsys):
    fake = tmp_path / "notes.pdf"
    fake.write_text("just some text, not a PDF")
    assert main(["ingest", str(fake), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "notes" in error and "pdf" in error.lower()
    assert not (tmp_path / "out" / "chunks.parquet").exists()


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for name in ("qwen2.5-coder-0.5b", "t-lite-instruct-0.1", "recorded-qwen3", "lead-3"):
        assert name in listing


def test_explain_unknown_score_fails_clearly(state_dir, capsys):
    assert main(["explain", "no-such-score"]) == 2
    assert "no-such-score" in capsys.readouterr().err


def test_report_on_an_empty_state_writes_a_page_and_valid_json(state_dir, capsys):
    from pathlib import Path

    assert main(["report"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.exists() and path.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert main(["report", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert "judge_reliability" in payload


def test_a_first_run_prints_no_library_warning_and_no_traceback(tmp_path):
    # A fresh state, a real subprocess (warning filters and the console as a user sees them).
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAG_PIPELINE_HOME": str(tmp_path / "state"), "DAGSTER_HOME": str(tmp_path / "state" / "dagster")}
    result = subprocess.run(  # noqa: PLW1510 - the return code is asserted below
        [sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", "demo-rerank-study", "--models", "lead-3", "--no-judge"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    noise = [line for line in output.splitlines() if "Warning" in line]
    assert not noise, "\n".join(noise)
    assert "lead-3" in result.stdout  # the leaderboard was printed
