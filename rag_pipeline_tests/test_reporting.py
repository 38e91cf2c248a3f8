"""build_all on a stored state with two registered collections (the demo corpus and the recorded
reference study) plus a paper missing from the registry: tables, report, headline and judge
reliability are per collection, never pooled; the unregistered paper is listed as retired, never ranked."""

import json
import re

import pandas as pd
import pytest

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.datasets import load_demo_questions, papers_by_id
from rag_pipeline.evaluate import judge as jd
from rag_pipeline.evaluate import study
from rag_pipeline.evaluate.leaderboard import find_nan
from rag_pipeline.evaluate.text_metrics import score_generations
from rag_pipeline.reporting import STUDY_COLLECTION, build_all, headline_markdown
from rag_pipeline.settings import state_paths
from rag_pipeline_tests.evaluate.factories import generation, generations_frame
from rag_pipeline_tests.suite_data import SUITE_DATA

UNKNOWN_PAPER = "paper-not-in-registry"
DEMO_MODELS = ("synthetic-full", "synthetic-half", "synthetic-off-topic")
STUDY_MODELS = set(study.STUDY_MODELS.values())


def _outputs(reference: str) -> dict[str, str]:
    """Answers of decreasing overlap with the reference (data rows, not a model)."""
    words = reference.split()
    return {"synthetic-full": reference, "synthetic-half": " ".join(words[: max(1, len(words) // 2)]),
            "synthetic-off-topic": "Рецепт борща: свёкла, капуста и картофель."}


def _demo_run() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Generations, metrics and scripted-judge verdicts for two demo papers and one unknown paper."""
    questions = load_demo_questions()
    papers = sorted({q.paper_id for q in questions})[:2]
    items = {q.question_id: (q.paper_id, q.reference_answer) for q in questions if q.paper_id in papers}
    items.update({f"{UNKNOWN_PAPER}:q{n}": (UNKNOWN_PAPER, f"Ответ номер {n} про неизвестную статью.") for n in (1, 2)})
    rows = [generation("answer", item, model, output, paper_id=paper, latency_s=0.5)
            for item, (paper, reference) in items.items() for model, output in _outputs(reference).items()]
    generations = generations_frame(rows)
    references = {item: reference for item, (_, reference) in items.items()}
    metrics = score_generations(generations, references, metrics=["bleu", "rouge"], progress=False)
    overlap = {r["output"]: len(r["output"]) if r["model"] != "synthetic-off-topic" else 0 for r in rows}
    block = re.compile(r"Ответ ([A-Z]):\n<<<\n(.*?)\n>>>", re.DOTALL)

    def scripted_judge(messages):  # ranks by overlap with the reference; a stand-in for an LLM API
        shown = dict(block.findall(messages[-1]["content"]))
        return json.dumps({"ranking": sorted(shown, key=lambda label: -overlap[shown[label]])})

    judgments = jd.run_judge(generations, references, jd.Judge(complete=scripted_judge, name="scripted-judge"),
                             modes=["listwise"], contexts={item: "Вопрос?" for item in items}, progress=False)
    return generations, metrics, judgments


def _retrieval_rows(paper_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"question_id": f"{paper}:q{n}", "paper_id": paper, "n_relevant": 1, "hit@1": float(n == 1),
                          "hit@2": 1.0, "hit@10": 1.0, "mrr": 1.0 / n, "ndcg@10": 1.0 / n, "first_relevant_rank": n,
                          "relevance_mark": None, "error": ""} for paper in paper_ids for n in (1, 2)])


def _write_partitions(store: ArtifactStore, asset: str, frame: pd.DataFrame, by_model: bool = True) -> None:
    """Store ``frame`` as the asset's partitions: one per model × paper (or per paper)."""
    keys = ["model", "paper_id"] if by_model else ["paper_id"]
    for key, group in frame.groupby(keys):
        store.write_frame(asset, *(key if isinstance(key, tuple) else (key,)), frame=group.reset_index(drop=True))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    import shutil

    import yaml


    data = tmp_path_factory.mktemp("registry") / "data"
    shutil.copytree(SUITE_DATA, data)
    registry = yaml.safe_load((data / "models.yaml").read_text(encoding="utf-8"))
    registry["models"] += [{"name": name, "backend": "extractive", "extractive": {"method": "top-chunk"}, "tasks": ["answer"]}
                           for name in DEMO_MODELS]
    (data / "models.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    patch = pytest.MonkeyPatch()
    patch.setenv("RAG_PIPELINE_DATA", str(data))  # the synthetic models are registered; UNKNOWN_PAPER is not
    paths = state_paths(tmp_path_factory.mktemp("state"))
    store = ArtifactStore(paths.artifacts)
    outputs = study.load_study_outputs()
    study_generations = study.study_generations(outputs)
    study_scores = pd.concat([study.study_metrics(outputs, metrics=["bleu", "rouge1_fmeasure"]),
                              study.study_recorded_cosines(outputs)], ignore_index=True)
    generations, metrics, judgments = _demo_run()
    _write_partitions(store, "answers", generations)
    _write_partitions(store, "summaries", study_generations[study_generations["task"] == "summary"])
    _write_partitions(store, "answers", study_generations[study_generations["task"] == "answer"])
    _write_partitions(store, "generation_metrics", pd.concat([metrics, study_scores], ignore_index=True))
    _write_partitions(store, "judgments", pd.concat([judgments, study.study_judgments(outputs)], ignore_index=True), by_model=False)
    _write_partitions(store, "retrieval_metrics", _retrieval_rows(sorted(generations["paper_id"].unique())), by_model=False)
    result = build_all(store, paths, inputs={"test": 1})
    yield result, store, generations
    patch.undo()


def test_an_unregistered_paper_is_listed_as_retired_and_never_ranked(built):
    result, store, _ = built
    assert ("paper", UNKNOWN_PAPER) in set(zip(result.retired["kind"], result.retired["id"]))
    for name, table in result.tables.items():
        if "paper_id" in table.columns:
            assert UNKNOWN_PAPER not in set(table["paper_id"]), name
    assert not store.read_frame("answers", "synthetic-full", UNKNOWN_PAPER).empty  # still stored
    assert "Выведены из сравнения" in result.report_path.read_text(encoding="utf-8")


def _collection(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[frame["collection"] == name]


def test_the_registry_assigns_the_collections_used_here():
    papers = papers_by_id()
    assert {papers[p].collection for p in study.load_study_outputs()["paper_id"]} == {STUDY_COLLECTION}
    assert UNKNOWN_PAPER not in papers


def test_every_table_is_per_collection_and_has_no_nan(built):
    result, store, _ = built
    assert find_nan(result.tables) == []
    for name, table in result.tables.items():
        assert table.columns[0] == "collection", name
        stored = store.read_frame("leaderboard", name=name)
        assert list(stored.columns) == list(table.columns) and len(stored) == len(table)
    assert set(result.tables["summary"]["collection"]) == {"demo", STUDY_COLLECTION}
    retrieval = result.tables["retrieval"]
    assert set(retrieval["collection"]) == {"demo"}
    overall = retrieval[retrieval["scope"] == "overall"].set_index("collection")["n_questions"]
    assert overall.to_dict() == {"demo": 4}  # one overall row per collection


def test_no_model_is_averaged_over_another_collections_items(built):
    result, _, generations = built
    summary = result.tables["summary"].set_index(["collection", "task", "metric", "model"])
    demo_questions = generations.loc[generations["paper_id"] != UNKNOWN_PAPER, "item_id"].nunique()
    for model in DEMO_MODELS:
        assert summary.loc[("demo", "answer", "bleu", model), "n"] == demo_questions
    for model in STUDY_MODELS:
        assert summary.loc[(STUDY_COLLECTION, "answer", "bleu", model), "n"] == 50
        assert summary.loc[(STUDY_COLLECTION, "summary", "rouge1_fmeasure", model), "n"] == 10
    pairwise = result.tables["pairwise"]
    assert set(_collection(pairwise, "demo")[["model_a", "model_b"]].stack()) == set(DEMO_MODELS)
    assert set(_collection(pairwise, STUDY_COLLECTION)[["model_a", "model_b"]].stack()) == STUDY_MODELS
    assert not result.tables["summary"]["noise_note"].str.contains("no items shared").any()
    # the study's notebook table is the notebook's own: 10 papers and 50 questions
    notebook = _collection(result.tables["notebook_table"], STUDY_COLLECTION)
    assert any("(50 вопросов)" in c and notebook[c].notna().all() for c in notebook.columns)


def test_judge_reliability_per_collection_with_kendall_only_on_the_study(built):
    result, _, _ = built
    assert set(result.reliability) == {"demo", STUDY_COLLECTION}
    assert result.reliability[STUDY_COLLECTION]["kendall_tau"] == pytest.approx(1.0)  # the notebook's own ranks
    assert result.reliability[STUDY_COLLECTION]["n_items"] == 60
    assert result.reliability["demo"]["kendall_tau"] is None
    assert "no reference ranks given" in "; ".join(result.reliability["demo"]["notes"])
    assert result.reliability["demo"]["position_consistency"] == 1.0  # the scripted judge ignores positions


def test_report_has_one_section_per_collection(built):
    result, _, _ = built
    html = result.report_path.read_text(encoding="utf-8")
    found = re.findall(r'<section class="collection" id="collection-([^"]+)">(.*?)</section>', html, flags=re.DOTALL)
    assert [name for name, _ in found] == ["demo", STUDY_COLLECTION]
    body = dict(found)
    assert "kendall_tau_items" in body[STUDY_COLLECTION]
    assert "recorded-tbank" not in body["demo"] and "synthetic-full" not in body[STUDY_COLLECTION]
    assert html.count("Эталонное исследование") == 1


def test_json_records_carry_their_collection(built):
    result, _, _ = built
    text = json.dumps(result.json, allow_nan=False, ensure_ascii=False)
    assert "NaN" not in text
    assert all(record["collection"] for records in result.json.values() for record in records)


def test_headline_markdown_is_one_wide_table_per_collection_and_task(built):
    result, _, _ = built
    markdown = result.markdown
    blocks = dict(re.findall(r"^### (\S+)\n(.*?)(?=^### |\Z)", markdown, flags=re.DOTALL | re.MULTILINE))
    assert list(blocks) == ["demo", STUDY_COLLECTION]
    assert all(model in blocks["demo"] for model in DEMO_MODELS)
    assert not any(model in blocks["demo"] for model in STUDY_MODELS)
    header = next(line for line in blocks[STUDY_COLLECTION].splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["model", "n", "rouge1_fmeasure", "bleu", "cosine",
                                                                  "judge_rank"]
    summary = result.tables["summary"].set_index(["collection", "task", "metric", "model"])
    tbank = summary.loc[(STUDY_COLLECTION, "answer", "bleu", "recorded-tbank")]
    row = next(line for line in blocks[STUDY_COLLECTION].split("summary:")[0].splitlines()
               if line.startswith("| recorded-tbank"))
    digits = 1 if summary.xs((STUDY_COLLECTION, "answer", "bleu"))["mean"].abs().max() >= 10 else 3
    assert f"{tbank['mean']:.{digits}f} [{tbank['ci_low']:.{digits}f}, {tbank['ci_high']:.{digits}f}]" in row
    # only the printed-cosine questions have a cosine: the cell says its smaller n
    assert "(n=10)" in row
    assert max(len(line) for line in markdown.splitlines()) < 160  # readable in a terminal


def test_headline_marks_the_best_and_the_models_within_noise():
    summary = pd.DataFrame({
        "collection": "c", "task": "answer", "metric": ["bleu"] * 3 + ["cosine"] * 3, "model": ["a", "b", "c"] * 2,
        "n": [5, 5, 3, 5, 5, 5], "mean": [10.0, 9.5, 1.0, 0.9, 0.8, 0.7], "ci_low": [8.0, 7.0, 0.5, 0.85, 0.75, 0.6],
        "ci_high": [12.0, 11.0, 1.5, 0.95, 0.85, 0.8], "direction": "higher is better",
        "within_noise_of_best": [True, True, False, True, False, False],
    })
    lines = {line.split("|")[1].strip(): line for line in headline_markdown({"summary": summary}).splitlines()
             if line.startswith("| ") and not line.startswith("| model")}
    assert "| 10.0 [8.0, 12.0] * " in lines["a"] and lines["a"].rstrip(" |").endswith("0.900 [0.850, 0.950] *")
    assert "9.5 [7.0, 11.0] ~" in lines["b"]  # one precision per column
    assert "0.800 [0.750, 0.850] |" in lines["b"].replace("  ", "")  # significantly worse: no mark
    assert "1.0 [0.5, 1.5] (n=3)" in lines["c"] and "*" not in lines["c"] and "~" not in lines["c"]
    assert headline_markdown({}) == "_no metric rows stored yet_"


def test_side_by_side_shows_every_output_and_flags_judge_vs_metric_disagreement():
    from rag_pipeline.evaluate.judge.core import Judge, verdict_frame, verdict_row
    from rag_pipeline.evaluate.report import _side_by_side_section
    from rag_pipeline.reporting import side_by_side

    paper = min({q.paper_id for q in load_demo_questions()})
    first, second = [q.question_id for q in load_demo_questions() if q.paper_id == paper][:2]
    generations = pd.DataFrame([{"task": "answer", "item_id": item, "paper_id": paper, "model": model,
                                 "output": f"{model} on {item}", "error": ""}
                                for item in (first, second) for model in ("m1", "m2")])
    # cosine prefers m2 on both items; the judge ranks m1 first on `first` and m2 first on `second`
    metrics = pd.DataFrame([{"item_id": item, "model": model, "metric": "cosine", "value": value, "error": ""}
                            for item in (first, second) for model, value in (("m1", 0.5), ("m2", 0.9))])
    judge = Judge(complete=lambda m: "", name="j")
    rows = [verdict_row(judge, {"item_id": item, "paper_id": paper, "task": "answer"}, model, "listwise", 0, 1, "A",
                        [], rank=rank)
            for item, ranks in ((first, {"m1": 1, "m2": 2}), (second, {"m1": 2, "m2": 1})) for model, rank in ranks.items()]
    retrievals = pd.DataFrame([{"question_id": first, "kept": True, "final_rank": 1, "text": "the kept chunk"}])
    items = side_by_side(generations, metrics, verdict_frame(rows), retrievals)
    assert len(items) == 4 and set(items["output"]) == {f"{m} on {i}" for i in (first, second) for m in ("m1", "m2")}
    flagged = items.groupby("item_id")["disagreement"].first()
    assert flagged[first] and not flagged[second]
    assert (items[items["item_id"] == first]["chunks"] == "the kept chunk").all()
    assert items["metrics"].str.contains("cosine 0.").all() and items["verdict"].str.contains("listwise").all()
    html = _side_by_side_section(items)
    assert html.count('<tr class="sbs') == 4 and html.count(" dis\"") == 2  # both rows of the flagged item
    assert 'id="sbs-model-1"' in html and "<script" not in html
