"""The metric and judge-mode registries: what they hold, in which order, and that one decorated
class is all a new metric needs to be scored and ranked."""

import pytest

from rag_pipeline.evaluate import judge as jd
from rag_pipeline.evaluate import text_metrics as tm
from rag_pipeline.evaluate.direction import Direction
from rag_pipeline.evaluate.leaderboard import metric_direction
from rag_pipeline.evaluate.metrics import METRICS, Metric, Score, register_metric
from rag_pipeline_tests.evaluate.factories import generation, generations_frame


def test_families_are_registered_in_the_order_of_a_generations_rows():
    assert list(METRICS) == ["bleu", "rouge", "chrf", "cosine", "length", "language", "latency"]
    assert tm.METRIC_FAMILIES["rouge"] == tm.ROUGE_METRICS and len(tm.ROUGE_METRICS) == 9
    assert tm.METRIC_FAMILIES["length"] == ("length_chars", "length_words")


def test_directions_come_from_the_metric_and_judge_mode_classes():
    assert metric_direction("bleu") == metric_direction("rougeL_fmeasure") == metric_direction("cosine") == 1
    assert metric_direction("cyrillic_share") == 1
    assert metric_direction("latency_s") == -1
    assert metric_direction("length_words") == 0
    assert metric_direction("judge_rank") == -1 and metric_direction("judge_rank[gpt-4o]") == -1
    assert metric_direction("judge_win_rate") == metric_direction("judge_grade") == 1
    assert metric_direction("no-such-metric") == 0


def test_judge_modes_are_registered_in_order_with_their_score_metrics():
    assert jd.MODES == ("listwise", "pairwise", "graded", "cascade")
    assert {name: (mode.verdict_column, mode.score_metric) for name, mode in jd.JUDGE_MODES.items()} == {
        "listwise": ("rank", "judge_rank"), "pairwise": ("win", "judge_win_rate"), "graded": ("grade", "judge_grade"),
        "cascade": ("win", "judge_guaranteed_win_rate")}


class Exclamations(Metric):
    """The package docstring's example metric."""

    family = "exclamations"
    names = ("exclamations",)
    direction = Direction.LOWER
    needs_reference = False

    def signature(self, name):
        return {"metric": name, "definition": "count of '!' in output"}

    def score(self, sample):
        return {"exclamations": Score(float(sample.hypothesis.count("!")), self.signature("exclamations"))}


@pytest.fixture
def exclamations_registered():
    register_metric(Exclamations)
    yield
    del METRICS["exclamations"]


def test_a_new_metric_is_one_registered_class(exclamations_registered):
    frame = generations_frame([
        generation("answer", "p1:q01", "model-a", "Ура! Работает!"),
        generation("answer", "p1:q01", "model-b", "", error="timeout"),
    ])
    rows = tm.score_generations(frame, {}, metrics=["exclamations"], progress=False).set_index("model")
    assert rows.loc["model-a", "value"] == 2.0 and rows.loc["model-a", "error"] == ""
    assert rows.loc["model-b", "error"] == "generation failed: timeout"
    assert metric_direction("exclamations") == -1
    default = tm.score_generations(frame.iloc[:1], {}, progress=False)
    assert default["metric"].iloc[-1] == "exclamations"  # after every built-in family


def test_a_clashing_or_incomplete_metric_is_refused():
    with pytest.raises(ValueError, match="rouge1_recall already registered"):
        register_metric(type("Clash", (Metric,), {"family": "rouge2", "names": ("rouge1_recall",),
                                                  "direction": Direction.HIGHER, "needs_reference": True}))
    with pytest.raises(TypeError, match="direction must be a Direction"):
        register_metric(type("NoDirection", (Metric,), {"family": "x", "names": ("x",), "direction": 1,
                                                        "needs_reference": False}))
    assert "rouge2" not in METRICS and "x" not in METRICS
