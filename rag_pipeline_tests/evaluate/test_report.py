"""The HTML report: renders, is self-contained, shows every model, the study and the judge."""

import json
import re
import xml.etree.ElementTree as ET

import pytest

from rag_pipeline.evaluate import judge as jd
from rag_pipeline.evaluate.leaderboard import build_leaderboard
from rag_pipeline.evaluate.report import leaderboard_json, write_report
from rag_pipeline.evaluate.study import verify_study


@pytest.fixture(scope="module")
def report(benchmark_run, tmp_path_factory):
    generations, _, metrics, judgments, _ = benchmark_run
    tables = build_leaderboard(metrics, generations, judgments, n_boot=100, n_permutations=500)
    out_dir = tmp_path_factory.mktemp("report")
    path = write_report(tables, out_dir / "leaderboard.html", study=verify_study(),
                        reliability=jd.judge_reliability(judgments))
    return path, path.read_text(encoding="utf-8"), tables


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


def test_report_svg_is_well_formed_and_has_ci_bars(report):
    _, html, tables = report
    charts = re.findall(r"<svg.*?</svg>", html, flags=re.DOTALL)
    assert len(charts) >= len(tables["summary"].groupby(["task", "metric"])) + 2  # bars + 2 heatmaps
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
