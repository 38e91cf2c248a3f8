"""The HTML report: renders, is self-contained, one section per collection, every model, the study
and the judge."""

import json
import re
import xml.etree.ElementTree as ET

import pytest

from rag_pipeline.evaluate import judge as jd
from rag_pipeline.evaluate.leaderboard import (
    UNREGISTERED,
    build_leaderboard,
    build_leaderboard_by_collection,
    notebook_column_name,
    split_by_collection,
)
from rag_pipeline.evaluate.report import leaderboard_json, write_report
from rag_pipeline.evaluate.study import verify_study
from rag_pipeline_tests.evaluate.factories import COLLECTION_OF


@pytest.fixture(scope="module")
def report(two_collection_run, tmp_path_factory):
    generations, metrics, judgments = two_collection_run
    tables = build_leaderboard_by_collection(metrics, generations, judgments, collection_of=COLLECTION_OF,
                                             n_boot=100, n_permutations=500)
    reliability = {c: jd.judge_reliability(group) for c, group in split_by_collection(judgments, COLLECTION_OF).items()}
    out_dir = tmp_path_factory.mktemp("report")
    path = write_report(tables, out_dir / "leaderboard.html", study=verify_study(), reliability=reliability)
    return path, path.read_text(encoding="utf-8"), tables


def sections(html: str) -> dict[str, str]:
    """The HTML of each collection's section, by collection."""
    found = re.findall(r'<section class="collection" id="collection-([^"]+)">(.*?)</section>', html, flags=re.DOTALL)
    return dict(found)


def test_report_is_one_self_contained_html_file(report):
    path, html, _ = report
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.IGNORECASE)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert [p.name for p in path.parent.iterdir()] == ["leaderboard.html"]  # atomic: no temp file left


def test_report_contains_every_model_and_section(report):
    _, html, tables = report
    for model in set(tables["summary"]["model"]):
        assert model in html
    for heading in ("Итоговая таблица", "95% доверительные интервалы", "Парные сравнения", "Брэдли",
                    "По статьям", "Надёжность судьи", "Эталонное исследование", "Сигнатуры метрик",
                    "Сигнатуры генераций"):
        assert heading in html
    assert "в пределах шума" in html
    assert "0.454545" in html  # the notebook's Tbank ROUGE-1 F beside ours
    assert "position_consistency" in html
    assert "tok:intl" in html  # BLEU signature


def test_report_has_one_section_per_collection_with_only_its_models(report):
    _, html, tables = report
    by_collection = sections(html)
    assert list(by_collection) == ["alpha", "beta", UNREGISTERED]  # unregistered papers last
    assert html.count('<section class="collection"') == 3
    summary = tables["summary"]
    for collection, body in by_collection.items():
        assert f"Коллекция «{collection}»" in body
        for heading in ("Итоговая таблица", "95% доверительные интервалы", "Парные сравнения", "По статьям",
                        "Надёжность судьи", "position_consistency"):
            assert heading in body, (collection, heading)
        for model in set(summary.loc[summary["collection"] == collection, "model"]):
            assert f"<td>{model}</td>" in body
    assert "<td>llm-mid</td>" not in by_collection["alpha"] and "<td>llm-bad</td>" not in by_collection["beta"]
    # each section's notebook table has its own item counts only
    alpha_cosine = notebook_column_name("cosine", "answer", 6, "")
    beta_cosine = notebook_column_name("cosine", "answer", 3, "")
    assert alpha_cosine in by_collection["alpha"] and beta_cosine not in by_collection["alpha"]
    assert beta_cosine in by_collection["beta"] and alpha_cosine not in by_collection["beta"]
    assert "других коллекций" not in by_collection["alpha"]
    assert html.count("Эталонное исследование") == 1 and html.count("Сигнатуры генераций") == 1


def test_report_rejects_tables_without_collection(benchmark_run, tmp_path):
    generations, _, metrics, _, _ = benchmark_run
    pooled = build_leaderboard(metrics, generations, None, n_boot=20, n_permutations=100)
    with pytest.raises(ValueError, match="'collection' column"):
        write_report(pooled, tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_report_svg_is_well_formed_and_has_ci_bars(report):
    _, html, tables = report
    charts = re.findall(r"<svg.*?</svg>", html, flags=re.DOTALL)
    n_heatmaps = len(tables["per_paper"].groupby(["collection", "task", "metric"]))
    assert len(charts) == len(tables["summary"].groupby(["collection", "task", "metric"])) + n_heatmaps
    for chart in charts:
        ET.fromstring(chart)
    assert html.count("<line") >= 3 * len(tables["summary"])  # every bar has an error bar with two caps


def test_leaderboard_json_is_strict_json(report):
    _, _, tables = report
    data = leaderboard_json(tables)
    assert set(data) == set(tables)
    text = json.dumps(data, allow_nan=False, ensure_ascii=False)
    assert "NaN" not in text
    assert len(data["summary"]) == len(tables["summary"])
    assert {record["collection"] for record in data["summary"]} == {"alpha", "beta", UNREGISTERED}
