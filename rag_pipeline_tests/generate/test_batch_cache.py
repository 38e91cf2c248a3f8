"""Work is kept as it is done: generations reach the cache per completed batch, judge verdicts per
call, so a run killed mid-way redoes at most the batch in flight."""

from __future__ import annotations

import pytest

from rag_pipeline.cache import ContentCache
from rag_pipeline.evaluate import judge as jd
from rag_pipeline.generate.backends.extractive_backend import ExtractiveBackend
from rag_pipeline.generate.backends.transformers_backend import TransformersBackend
from rag_pipeline.generate.registry import models_by_name
from rag_pipeline.generate.runner import run_generation
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline_tests.evaluate.test_judge import REFERENCES, by_quality, make_judge, three_model_generations
from rag_pipeline_tests.generate.conftest import make_spec
from rag_pipeline_tests.generate.test_transformers_backend import PROMPTS, _requests


class Killed(BaseException):
    """Stands for the process dying in the middle of a batch (nothing after it runs)."""


def _dies_at_batch(backend: TransformersBackend, number: int) -> list[int]:
    """Make the backend's `number`-th batch die in flight; returns the list of batch sizes generated."""
    real, sizes = backend._generate_batch, []

    def generate_batch(task, batch_ids):
        if len(sizes) + 1 == number:
            raise Killed
        sizes.append(len(batch_ids))
        return real(task, batch_ids)

    backend._generate_batch = generate_batch
    return sizes


def test_a_run_killed_mid_generation_keeps_its_finished_batches(tiny_llama_dir, tmp_path):
    spec = make_spec(model=str(tiny_llama_dir), batch_size=2)
    requests = _requests(PROMPTS[:6])
    expected = run_generation(spec, requests, cache=ContentCache(tmp_path / "clean"), progress=False)

    cache = ContentCache(tmp_path / "cache")
    dying = TransformersBackend(spec)
    _dies_at_batch(dying, 3)
    with pytest.raises(Killed):
        run_generation(spec, requests, cache=cache, backend=dying, progress=False)
    assert len(cache) == 4  # two whole batches, before the partition finished

    again = TransformersBackend(spec)
    generated = _dies_at_batch(again, 0)  # never dies: counts what the re-run generates
    rows = run_generation(spec, requests, cache=cache, backend=again, progress=False)
    assert generated == [2]  # only the batch that was in flight
    assert sum(row.cache_hit for row in rows) == 4 and len(cache) == 6
    assert [row.output for row in rows] == [row.output for row in expected]
    assert [row.generation_id for row in rows] == [row.generation_id for row in expected]


def test_model_free_backends_report_in_batches_of_batch_size():
    spec = models_by_name()["top-chunk"].replace(batch_size=3)
    requests = [
        GenerationRequest(task="answer", paper_id="p", item_id=f"p:q{i}", messages=[{"role": "user", "content": "?"}],
                          context={"chunks": [f"chunk {i}"]})
        for i in range(7)
    ]
    reported = []
    results = ExtractiveBackend(spec).generate(requests, progress=False,
                                               on_batch=lambda indices, batch: reported.append((indices, batch)))
    assert [indices for indices, _ in reported] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [r.output for _, batch in reported for r in batch] == [r.output for r in results] == [
        f"chunk {i}" for i in range(7)]


def test_judge_verdicts_are_cached_per_call_so_a_crash_keeps_them(tmp_path):
    cache = ContentCache(tmp_path / "judge")
    calls = []

    def dies_on_the_fourth_call(messages):
        calls.append(messages)
        if len(calls) == 4:
            raise Killed
        return by_quality(messages)

    with pytest.raises(Killed):
        jd.run_judge(three_model_generations(), REFERENCES, make_judge(dies_on_the_fourth_call, cache=cache),
                     progress=False)
    assert len(cache) == 3
    again = make_judge(by_quality, cache=cache)
    jd.run_judge(three_model_generations(), REFERENCES, again, progress=False)
    assert again.calls == 6 - 3  # listwise: 3 shifts × 2 items; the 3 answered before the crash are reused


def test_served_answers_are_cached_as_they_arrive(tmp_path, monkeypatch):
    from rag_pipeline_tests.generate.test_openai_backend import FakeOpenAIServer, _backend, _spec
    from rag_pipeline_tests.generate.test_openai_backend import _requests as served_requests

    monkeypatch.setenv("RAG_TEST_LLM_KEY", "sk-test")
    cache = ContentCache(tmp_path / "cache")
    with FakeOpenAIServer([("echo", 0.01)]) as server:
        spec = _spec(server, batch_size=1)
        dying = _backend(spec)
        real_one = dying._one

        def one(request):
            if request.item_id == "p:q3":
                raise Killed  # the client dies while the fourth request is in flight
            return real_one(request)

        dying._one = one
        with pytest.raises(Killed):
            run_generation(spec, served_requests(6), cache=cache, backend=dying, progress=False)
        assert len(cache) == 3
        rows = run_generation(spec, served_requests(6), cache=cache, backend=_backend(spec), progress=False)
    assert [row.cache_hit for row in rows] == [True] * 3 + [False] * 3
    # The first run sent q0-q2 (and perhaps q4, already with the worker); the second only q3-q5.
    assert len(server.received) in (3 + 3, 4 + 3)
