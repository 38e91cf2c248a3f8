"""The living pipeline on a real instance: edits re-run exactly what reads them, retirement,
immutable versions with exact lineage, and per-partition versions in single-run backfills.

The automation is evaluated with Dagster's own evaluator (the daemon's loop, in-process): after an
edit, the registries and configuration are observed, every requested partition is materialized,
and the conditions are evaluated again until nothing is requested. `test_daemon.py` runs the same
through a real daemon.
"""

from __future__ import annotations

import io
import re
import shutil
from collections import defaultdict
from contextlib import redirect_stdout
from datetime import UTC

import dagster as dg
import pytest
import yaml

from rag_pipeline import cli
from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.definitions import defs
from rag_pipeline.defs.inputs import record_observations
from rag_pipeline.defs.partitions import model_paper_key, sync_registry_partitions
from rag_pipeline.defs.runner import run_pipeline
from rag_pipeline_tests.defs.conftest import latest_data_version
from rag_pipeline_tests.suite_data import SUITE_DATA

PAPERS = ["demo-sparse-routing", "demo-morph-tokenizer"]
MODELS = ["lead-3", "top-chunk"]
GRAPH = [*defs.assets, *defs.asset_checks]


def _keep(path, field, key, wanted):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data[field] = [entry for entry in data[field] if entry[key] in wanted]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _edit_yaml(path, edit):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def settle(instance, cursor, max_waves: int = 10):
    """Observe the inputs, then run what the automation requests until it requests nothing.
    Returns ({asset: {partition}}, cursor)."""
    record_observations(instance)
    ran: dict[str, set[str]] = defaultdict(set)
    for _ in range(max_waves):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        requested = {}
        for key in (asset.key for asset in defs.assets if hasattr(asset, "key")):
            partitions = result.get_requested_partitions(key)
            if partitions:
                requested[key.to_user_string()] = partitions
        if not requested:
            return dict(ran), cursor
        by_partition: dict = defaultdict(list)
        for asset, partitions in requested.items():
            for partition in partitions:
                by_partition[partition].append(asset)
        for partition, assets in by_partition.items():
            outcome = dg.materialize(GRAPH, selection=assets, partition_key=partition, instance=instance,
                                     resources=dict(defs.resources), raise_on_error=False)
            assert outcome.success, f"{assets} {partition} failed"
            for asset in assets:
                ran[asset].add(str(partition) if partition is not None else "all")
    raise AssertionError(f"the automation did not settle in {max_waves} waves: {dict(ran)}")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """Two demo papers × two extractive models, fully materialized once by the CLI's runner on a
    private data/ copy; the judge is off (its model is slow on CPU; its own tests cover it)."""
    root = tmp_path_factory.mktemp("living")
    data, state = root / "data", root / "state"
    shutil.copytree(SUITE_DATA, data)
    _keep(data / "papers.yaml", "papers", "id", PAPERS)
    _keep(data / "models.yaml", "models", "name", MODELS + ["qwen2.5-coder-0.5b"])  # the judge model stays registered
    _edit_yaml(data / "pipeline.yaml", lambda config: config["judge"].update(enabled=False))
    patch = pytest.MonkeyPatch()
    patch.setenv("RAG_PIPELINE_DATA", str(data))
    patch.setenv("RAG_PIPELINE_HOME", str(state))
    (state / "dagster").mkdir(parents=True)
    with dg.DagsterInstance.local_temp(str(state / "dagster")) as instance:
        summary = run_pipeline(defs, instance, PAPERS, MODELS, progress=False)
        assert not summary.failed, summary.failed
        ran, _ = settle(instance, None)
        assert ran == {}, f"a fresh run left stale partitions: {ran}"
    patch.undo()
    return root


@pytest.fixture()
def living(baseline, tmp_path, monkeypatch):
    """A private copy of the baseline (registries, state and instance), so each test edits its own.
    Yields (instance, data dir, automation cursor)."""
    shutil.copytree(baseline, tmp_path / "copy")
    data, state = tmp_path / "copy" / "data", tmp_path / "copy" / "state"
    monkeypatch.setenv("RAG_PIPELINE_DATA", str(data))
    monkeypatch.setenv("RAG_PIPELINE_HOME", str(state))
    monkeypatch.setenv("DAGSTER_HOME", str(state / "dagster"))
    with dg.DagsterInstance.local_temp(str(state / "dagster")) as instance:
        _, cursor = settle(instance, None)
        yield instance, data, cursor


def keys(model_or_none, papers=PAPERS):
    return {str(model_paper_key(model_or_none, paper)) for paper in papers}


def test_a_comment_or_key_order_edit_runs_nothing(living):
    instance, data, cursor = living
    for name in ("models.yaml", "pipeline.yaml", "papers.yaml"):
        path = data / name
        parsed = yaml.safe_load(path.read_text(encoding="utf-8"))
        reordered = {key: parsed[key] for key in reversed(list(parsed))}
        path.write_text("# edited by hand\n" + yaml.safe_dump(reordered, allow_unicode=True, sort_keys=True), encoding="utf-8")
    assert record_observations(instance) == []
    ran, _ = settle(instance, cursor)
    assert ran == {}


def test_editing_one_models_entry_reruns_only_its_partitions(living):
    instance, data, cursor = living

    def edit(models):
        for entry in models["models"]:
            if entry["name"] == "lead-3":
                entry["extractive"]["sentences"] = 2
    _edit_yaml(data / "models.yaml", edit)
    ran, _ = settle(instance, cursor)
    # lead-3's summaries change, so their metrics re-run; its (empty) answers re-run unchanged;
    # top-chunk, ingest and the leaderboard's other inputs are untouched.
    assert ran.pop("summaries") == keys("lead-3")
    assert ran.pop("answers") == keys("lead-3")
    assert ran.pop("generation_metrics") == keys("lead-3")
    assert set(ran) <= {"judgments", "leaderboard"}, ran


def test_editing_chunking_reruns_chunks_and_below_for_every_paper_but_not_summaries(living):
    instance, data, cursor = living
    store = ArtifactStore(data.parent / "state" / "artifacts")
    old_chunks = {paper: store.current_version("paper_chunks", paper) for paper in PAPERS}
    _edit_yaml(data / "pipeline.yaml", lambda config: config["chunking"].update(chunk_size=500, chunk_overlap=50))
    ran, _ = settle(instance, cursor)
    for asset in ("paper_chunks", "paper_index", "retrievals", "retrieval_metrics"):
        assert ran[asset] == set(PAPERS), asset
    assert ran["answers"] >= keys("top-chunk")
    assert not {"paper_pdf", "paper_markdown", "paper_text", "summaries"} & set(ran)
    for paper in PAPERS:  # a new version beside the old one, which stays stored
        assert store.current_version("paper_chunks", paper) != old_chunks[paper]
        assert old_chunks[paper] in store.versions("paper_chunks", paper)
        assert store.read_frame("paper_chunks", paper)["text"].str.len().max() <= 500


def test_editing_retrieval_settings_reruns_retrievals_and_below(living):
    instance, data, cursor = living
    _edit_yaml(data / "pipeline.yaml", lambda config: config["retrieval"].update(top_n=1))
    ran, _ = settle(instance, cursor)
    assert ran["retrievals"] == set(PAPERS)
    assert ran["answers"] >= keys("top-chunk")
    assert not {"paper_pdf", "paper_markdown", "paper_text", "paper_chunks", "paper_index", "summaries"} & set(ran)


def test_editing_one_papers_questions_reruns_only_that_paper(living):
    instance, data, cursor = living
    edited, other = PAPERS

    def edit(questions):
        for entry in questions["questions"]:
            if entry["paper"] == edited:
                entry["question"] += " Ответьте кратко."
                break
    _edit_yaml(data / "demo_corpus" / "questions.yaml", edit)
    ran, _ = settle(instance, cursor)
    assert ran["retrievals"] == {edited}
    assert all(other not in partition for partitions in ran.values() for partition in partitions), ran
    assert not {"paper_chunks", "paper_index", "summaries"} & set(ran)


def test_editing_the_judge_reruns_its_calibration_and_judgments_only(living):
    instance, data, cursor = living
    _edit_yaml(data / "pipeline.yaml", lambda config: config["judge"].update(max_items_per_paper=2))
    ran, _ = settle(instance, cursor)
    assert ran.pop("judgments") == set(PAPERS)
    assert ran.pop("judge_calibration") == {"all"}  # the cascade's calibration reads the judge section too
    assert set(ran) <= {"leaderboard"}, ran


def test_a_retired_model_leaves_the_judge_and_the_leaderboard_and_its_results_stay(living):
    instance, data, cursor = living
    store = ArtifactStore(data.parent / "state" / "artifacts")
    _keep(data / "models.yaml", "models", "name", ["top-chunk", "qwen2.5-coder-0.5b"])
    changes = sync_registry_partitions(instance)
    assert changes["models"]["removed"] == ["lead-3"]
    ran, _ = settle(instance, cursor)
    assert ran["judgments"] == set(PAPERS) and ran["leaderboard"] == {"all"}
    assert "lead-3" not in set(store.read_frame("leaderboard", name="summary")["model"])
    retired = store.read_frame("leaderboard", name="retired")
    assert ("model", "lead-3") in set(zip(retired["kind"], retired["id"]))
    assert not store.read_frame("summaries", "lead-3", PAPERS[0]).empty  # kept on disk


def test_a_bad_registry_entry_is_reported_and_skipped_while_the_others_sync(living):
    instance, data, _ = living
    _edit_yaml(data / "papers.yaml", lambda registry: registry["papers"].extend([
        {"id": "Not A Slug!", "pdf": "x.pdf"},
        {"id": "demo-rerank-study", "pdf": "demo_corpus/pdf/demo-rerank-study.pdf", "collection": "demo"},
    ]))
    changes = sync_registry_partitions(instance)
    assert changes["papers"]["added"] == ["demo-rerank-study"]
    assert any("papers.yaml" in error and "Not A Slug!" in error for error in changes["papers"]["invalid"])


def _score_of(store, model, paper, task="answer"):
    metrics = store.read_frame("generation_metrics", model, paper)
    row = metrics[(metrics["task"] == task) & (metrics["error"] == "")].iloc[0]
    return row["score_id"]


def _explain(score_id) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["explain", score_id]) == 0
    return out.getvalue()


def test_explain_shows_the_inputs_that_produced_a_score_after_a_reingest_and_gc_frees_the_rest(living):
    instance, data, cursor = living
    store = ArtifactStore(data.parent / "state" / "artifacts")
    paper = PAPERS[0]
    score_id = _score_of(store, "top-chunk", paper)
    before = _explain(score_id)
    chunk_lines = [line for line in before.splitlines() if line.startswith("chunk ")]
    assert chunk_lines and "pdf " in before and "sha256" in before
    assert re.search(r"paper_chunks .* run [0-9a-f]{8} materialization \d+", before), before

    _edit_yaml(data / "pipeline.yaml", lambda config: config["chunking"].update(chunk_size=500, chunk_overlap=50))
    settle(instance, cursor)
    assert score_id not in set(store.read_frame("generation_metrics", "top-chunk", paper)["score_id"])  # re-scored
    after = _explain(score_id)  # the old score: the same chunks and versions as before the re-ingest
    assert [line for line in after.splitlines() if line.startswith("chunk ")] == chunk_lines
    assert after == before

    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["gc"]) == 0
    freed = re.search(r"freed ([\d.]+) MB in (\d+) stored version", out.getvalue())
    assert freed and int(freed.group(2)) > 0, out.getvalue()
    assert _explain(_score_of(store, "top-chunk", paper))  # current scores still explain
    with redirect_stdout(io.StringIO()):
        assert cli.main(["explain", score_id]) == 2  # the old one was only kept by what gc removed


def test_the_current_version_is_the_one_the_latest_materialization_points_to(living):
    instance, data, _ = living
    store = ArtifactStore(data.parent / "state" / "artifacts")
    from rag_pipeline.defs.versions import latest_materialized_version

    for asset, partition_keys in (("paper_chunks", [(p,) for p in PAPERS]), ("answers", [("top-chunk", p) for p in PAPERS]),
                                  ("leaderboard", [()])):
        for stored_keys in partition_keys:
            assert latest_materialized_version(instance, asset, stored_keys) == store.current_version(asset, *stored_keys)


def test_a_single_run_backfill_records_per_partition_versions_and_stops_propagation(living):
    instance, _, cursor = living
    single = {paper: latest_data_version(instance, "answers", model_paper_key("top-chunk", paper)) for paper in PAPERS}
    assert len(set(single.values())) == len(PAPERS)  # different papers, different answers
    result = dg.materialize(
        GRAPH, selection=["answers"], instance=instance, resources=dict(defs.resources),
        tags={"dagster/asset_partition_range_start": f"top-chunk|{PAPERS[0]}",
              "dagster/asset_partition_range_end": f"top-chunk|{PAPERS[-1]}"},
    )
    assert result.success
    records = instance.fetch_materializations(dg.AssetKey("answers"), limit=20).records
    backfilled = {r.partition_key: r.asset_materialization.tags["dagster/data_version"] for r in records if r.run_id == result.run_id}
    assert backfilled == {str(model_paper_key("top-chunk", paper)): single[paper] for paper in PAPERS}
    ran, _ = settle(instance, cursor)
    assert "generation_metrics" not in ran, ran  # unchanged outputs: nothing downstream re-runs


def test_the_nightly_retry_requests_what_failed_and_nothing_else(living):
    from datetime import datetime, timedelta

    instance, data, _ = living

    def add(registry):
        lead = next(m for m in registry["models"] if m["name"] == "lead-3")
        registry["models"].append({**lead, "name": "lead-2", "extractive": {"method": "lead", "sentences": 2}})
    day = datetime(2026, 11, 30, tzinfo=UTC)
    evening = day + timedelta(hours=20)
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=evening)
    _edit_yaml(data / "models.yaml", add)
    sync_registry_partitions(instance)
    record_observations(instance)
    registered = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor,
                                                   evaluation_time=evening + timedelta(minutes=1))
    assert set(map(str, registered.get_requested_partitions(dg.AssetKey("summaries")))) == keys("lead-2")
    # Its runs fail for a reason outside the inputs (here: its storage directory cannot be created).
    blocker = data.parent / "state" / "artifacts" / "summaries" / "lead-2"
    blocker.write_text("not a directory", encoding="utf-8")
    for key in keys("lead-2"):
        outcome = dg.materialize(GRAPH, selection=["summaries"], partition_key=key, instance=instance,
                                 resources=dict(defs.resources), raise_on_error=False)
        assert not outcome.success
    blocker.unlink()
    later = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=registered.cursor,
                                              evaluation_time=evening + timedelta(minutes=30))
    assert not later.get_requested_partitions(dg.AssetKey("summaries"))  # nothing changed: not asked again
    night = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=later.cursor,
                                              evaluation_time=day + timedelta(days=1, hours=3, minutes=1))
    # After the nightly tick exactly the failed partitions are retried; the judge model's partitions,
    # missing but never attempted, and everything fresh are left alone.
    assert set(map(str, night.get_requested_partitions(dg.AssetKey("summaries")))) == keys("lead-2")
    assert not night.get_requested_partitions(dg.AssetKey("paper_chunks"))
