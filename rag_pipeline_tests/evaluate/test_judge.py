"""Judge orchestration with a scripted chat function: permutations, position debiasing, caching,
retry and abstention, parsing, reliability."""

import json
import re

import pandas as pd
import pytest

from rag_pipeline.cache import ContentCache
from rag_pipeline.evaluate import judge as jd
from rag_pipeline.evaluate import study
from rag_pipeline.evaluate.leaderboard import find_nan
from rag_pipeline_tests.evaluate.factories import generation, generations_frame

QUALITY = re.compile(r"\[качество=(\d)\]")
BLOCK = re.compile(r"Ответ ([A-Z]):\n<<<\n(.*?)\n>>>", re.DOTALL)


class ScriptedChat:
    """Test double for a chat backend: answers every call from a script (a function of the prompt).

    Records every message list it received, so tests can count calls and inspect prompts.
    """

    def __init__(self, script):
        self.script = script
        self.received: list[list[dict]] = []

    def __call__(self, messages):
        self.received.append(messages)
        return self.script(messages)


def user_text(messages) -> str:
    return next(m for m in messages if m["role"] == "user")["content"]


def outputs_by_label(messages) -> dict[str, str]:
    return dict(BLOCK.findall(user_text(messages)))


def by_quality(messages) -> str:
    """Ranks the shown outputs by the quality tag inside them (a judge that reads content)."""
    shown = outputs_by_label(messages)
    order = sorted(shown, key=lambda label: -int(QUALITY.search(shown[label]).group(1)))
    if "ranking" in user_text(messages) or "Ранжируй" in user_text(messages):
        return json.dumps({"ranking": order})
    if len(shown) == 2:
        return json.dumps({"winner": order[0]})
    return json.dumps({"grade": int(QUALITY.search(shown["A"]).group(1)) + 1})


def always_first(messages) -> str:
    """A purely position-biased judge: whatever is shown first wins."""
    shown = outputs_by_label(messages)
    if len(shown) == 2:
        return "Лучше ответ A."
    return "Ранжирование: " + " > ".join(sorted(shown))


MODELS = {"model-good": 3, "model-mid": 2, "model-bad": 1}


def three_model_generations(items=("p1:q01", "p1:q02")):
    return generations_frame([
        generation("answer", item, model, f"Ответ модели про внимание [качество={quality}] {item}")
        for item in items for model, quality in MODELS.items()
    ])


REFERENCES = {"p1:q01": "Эталон первого ответа.", "p1:q02": "Эталон второго ответа."}
CONTEXTS = {"p1:q01": "Что такое внимание?", "p1:q02": "Зачем нужен softmax?"}


def make_judge(script, cache=None, **identity):
    return jd.Judge(complete=ScriptedChat(script), name="scripted-judge", identity=identity, cache=cache)


def test_listwise_shows_every_output_in_every_position_and_anonymises_models():
    judge = make_judge(always_first)
    verdicts = jd.run_judge(three_model_generations(), REFERENCES, judge, contexts=CONTEXTS, progress=False)
    assert len(judge.complete.received) == 2 * 3  # 2 items x 3 cyclic shifts
    for _, group in verdicts.groupby(["item_id", "model"]):
        assert sorted(group["position"]) == [1, 2, 3]
    for messages in judge.complete.received:
        text = user_text(messages)
        assert "model-" not in text and "Эталон" in text and ("Что такое внимание?" in text or "softmax" in text)
    assert verdicts["judgment_id"].is_unique
    assert set(verdicts.columns) == set(jd.VERDICT_COLUMNS)


def test_listwise_position_bias_cancels_out_in_the_mean_rank():
    verdicts = jd.run_judge(three_model_generations(), REFERENCES, make_judge(always_first), progress=False)
    ranks = jd.listwise_scores(verdicts)
    assert (ranks["value"] == 2.0).all()  # every model was first, second and third once
    reliability = jd.judge_reliability(verdicts)
    assert reliability["position_consistency_listwise"] == 0.0


def test_listwise_content_judge_orders_models_and_is_position_consistent():
    verdicts = jd.run_judge(three_model_generations(), REFERENCES, make_judge(by_quality), progress=False)
    mean_rank = jd.listwise_scores(verdicts).groupby("model")["value"].mean()
    assert mean_rank.to_dict() == {"model-bad": 3.0, "model-good": 1.0, "model-mid": 2.0}
    reliability = jd.judge_reliability(verdicts)
    assert reliability["position_consistency"] == 1.0 and reliability["abstention_rate"] == 0.0
    assert reliability["n_items"] == 2


def test_pairwise_flip_counts_as_a_tie():
    verdicts = jd.run_judge(three_model_generations(), REFERENCES, make_judge(always_first), modes=["pairwise"],
                            progress=False)
    assert len(verdicts) == 2 * 3 * 2 * 2  # items x pairs x orders x (two rows per call)
    outcomes = jd.pairwise_outcomes(verdicts)
    assert (outcomes["score_a"] == 0.5).all() and (outcomes["consistent"] == "False").all()
    reliability = jd.judge_reliability(verdicts)
    assert reliability["position_consistency"] == 0.0
    assert reliability["first_position_win_rate"] == 1.0


def test_pairwise_consistent_verdicts_decide_the_pair():
    verdicts = jd.run_judge(three_model_generations(), REFERENCES, make_judge(by_quality), modes=["pairwise"],
                            progress=False)
    outcomes = jd.pairwise_outcomes(verdicts).set_index(["item_id", "model_a", "model_b"])["score_a"]
    assert outcomes[("p1:q01", "model-bad", "model-good")] == 0.0
    assert outcomes[("p1:q01", "model-good", "model-mid")] == 1.0
    win_rate = jd.pairwise_scores(verdicts).groupby("model")["value"].mean()
    assert win_rate["model-good"] == 1.0 and win_rate["model-bad"] == 0.0
    assert jd.judge_reliability(verdicts)["first_position_win_rate"] == 0.5


def test_graded_mode_parses_grades():
    verdicts = jd.run_judge(three_model_generations(["p1:q01"]), REFERENCES, make_judge(by_quality), modes=["graded"],
                            progress=False)
    grades = verdicts.set_index("model")["grade"].astype(float).to_dict()
    assert grades == {"model-good": 4.0, "model-mid": 3.0, "model-bad": 2.0}
    assert verdicts["rank"].isna().all() and verdicts["win"].isna().all()  # not this mode's columns


def test_unparseable_answer_is_retried_once_then_abstains_with_raw_text():
    judge = make_judge(lambda messages: "Сложно сказать, все ответы по-своему хороши.")
    verdicts = jd.run_judge(three_model_generations(["p1:q01"]), REFERENCES, judge, progress=False)
    assert len(judge.complete.received) == 3 * 2  # 3 permutations, each asked twice
    retry = judge.complete.received[1]
    assert retry[-2]["role"] == "assistant" and "JSON" in retry[-1]["content"]
    assert verdicts["abstained"].all()
    assert (verdicts["reason"] == "unparseable answer after one retry").all()
    assert verdicts["raw"].str.contains("Сложно сказать").all() and verdicts["raw"].str.contains("---retry---").all()
    assert verdicts["rank"].isna().all()
    assert find_nan({"judgments": verdicts}) == []
    assert jd.judge_reliability(verdicts)["abstention_rate"] == 1.0
    assert jd.listwise_scores(verdicts).empty


def test_a_good_retry_answer_is_used():
    answers = iter(["не знаю", '{"ranking": ["C", "B", "A"]}'] * 3)
    verdicts = jd.run_judge(three_model_generations(["p1:q01"]), REFERENCES, make_judge(lambda m: next(answers)),
                            progress=False)
    assert not verdicts["abstained"].any()
    assert set(verdicts.loc[verdicts["label"] == "C", "rank"].astype(float)) == {1.0}


def test_a_failing_backend_becomes_an_abstention():
    def broken(messages):
        raise ConnectionError("judge API unreachable")

    verdicts = jd.run_judge(three_model_generations(["p1:q01"]), REFERENCES, make_judge(broken), modes=["graded"],
                            progress=False)
    assert verdicts["abstained"].all()
    assert verdicts["reason"].str.startswith("judge call failed: ConnectionError").all()


def test_cached_second_run_makes_no_calls(tmp_path):
    cache = ContentCache(tmp_path / "judge")
    first_judge = make_judge(by_quality, cache=cache, model="judge-v1")
    first = jd.run_judge(three_model_generations(), REFERENCES, first_judge, modes=["listwise", "pairwise"],
                         progress=False)
    assert first_judge.calls == 6 + 12 and len(cache) == 18
    second_judge = make_judge(by_quality, cache=cache, model="judge-v1")
    second = jd.run_judge(three_model_generations(), REFERENCES, second_judge, modes=["listwise", "pairwise"],
                          progress=False)
    assert second_judge.calls == 0 and second_judge.complete.received == []
    pd.testing.assert_frame_equal(first, second)
    other_revision = make_judge(by_quality, cache=cache, model="judge-v2")
    jd.run_judge(three_model_generations(), REFERENCES, other_revision, progress=False)
    assert other_revision.calls == 6  # the judge identity is part of the cache key


def test_failed_and_empty_generations_are_not_judged():
    frame = three_model_generations(["p1:q01"])
    frame.loc[frame["model"] == "model-bad", "error"] = "timeout"
    frame.loc[frame["model"] == "model-mid", "output"] = "  "
    verdicts = jd.run_judge(frame, REFERENCES, make_judge(by_quality), modes=["listwise", "graded"], progress=False)
    assert set(verdicts["model"]) == {"model-good"}
    assert set(verdicts["mode"]) == {"graded"}  # one usable output: nothing to rank


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown judge mode"):
        jd.run_judge(three_model_generations(), REFERENCES, make_judge(by_quality), modes=["elo"])


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"ranking": ["B", "A", "C"]}', {"B": 1, "A": 2, "C": 3}),
        ('Вот мой ответ:\n```json\n{"ranking": ["C", "A", "B"]}\n```\nC точнее всех.', {"C": 1, "A": 2, "B": 3}),
        ('["Ответ B", "Ответ C", "Ответ A"]', {"B": 1, "C": 2, "A": 3}),
        ("[2, 3, 1]", {"B": 1, "C": 2, "A": 3}),
        ('{"A": 2, "B": 1, "C": 2}', {"A": 2, "B": 1, "C": 2}),
        ('{"ranking": ["В", "А", "С"]}', {"B": 1, "A": 2, "C": 3}),  # Cyrillic look-alikes
        ("Лучший — B, затем C, хуже всех A.", {"B": 1, "C": 2, "A": 3}),
        ("1. C\n2. B\n3. A", {"C": 1, "B": 2, "A": 3}),
    ],
)
def test_parse_ranking_accepts_common_formats(text, expected):
    assert jd.parse_ranking(text, "ABC") == {k: float(v) for k, v in expected.items()}


@pytest.mark.parametrize("text", ["не знаю", '{"ranking": ["A", "A", "B"]}', "A лучше B, но C лучше A", "[1, 2]"])
def test_parse_ranking_refuses_ambiguous_answers(text):
    assert jd.parse_ranking(text, "ABC") is None


@pytest.mark.parametrize(
    "text, expected",
    [('{"winner": "B"}', "B"), ('{"winner": "tie"}', "tie"), ("Ответ A точнее.", "A"), ("Ничья.", "tie"),
     ("A и B одинаково хороши", "tie"), ("A лучше, чем B", None), ("хм", None)],
)
def test_parse_pairwise(text, expected):
    assert jd.parse_pairwise(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [('{"grade": 4}', 4), ("Оценка: 3 из 5", 3), ("5", 5), ('{"grade": "2"}', 2), ("Оценка 7", None), ("не знаю", None),
     ("1 или 2", None)],
)
def test_parse_grade(text, expected):
    assert jd.parse_grade(text) == expected


def test_kendall_tau_against_the_notebooks_ranks_on_the_recorded_study():
    outputs = study.load_study_outputs()
    summaries = outputs[outputs["task"] == "summary"]
    notebook_rank = dict(zip(summaries["output"], summaries["judge_rank"]))

    def notebook_judge(messages, reverse=False):
        shown = outputs_by_label(messages)
        order = sorted(shown, key=lambda label: notebook_rank[shown[label]], reverse=reverse)
        return json.dumps({"ranking": order})

    generations = study.study_generations(summaries)
    references = study.study_references(summaries)
    reference_ranks = study.notebook_judge_ranks(summaries)
    agreeing = jd.run_judge(generations, references, make_judge(notebook_judge), progress=False)
    result = jd.judge_reliability(agreeing, reference_ranks)
    assert result["kendall_tau"] == pytest.approx(1.0) and result["kendall_tau_items"] == 10
    assert result["position_consistency"] == 1.0 and result["n_items"] == 10
    reversed_judge = make_judge(lambda m: notebook_judge(m, reverse=True))
    disagreeing = jd.run_judge(generations, references, reversed_judge, progress=False)
    assert jd.judge_reliability(disagreeing, reference_ranks)["kendall_tau"] == pytest.approx(-1.0)
