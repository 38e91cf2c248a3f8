"""The `judgments` asset through Dagster with a judge behind an OpenAI-compatible HTTP API.

The judge is `FakeOpenAIServer` (a test fake: no real chat API is reachable here) that always
prefers whatever output is shown first: the pure position bias the permutations must cancel.
"""

import json

import yaml

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.definitions import defs
from rag_pipeline.defs.partitions import sync_registry_partitions
from rag_pipeline.defs.resources import JudgeResource
from rag_pipeline.defs.runner import GENERATION_SELECTION, materialize_partitions, model_paper_key
from rag_pipeline.evaluate.judge import judge_reliability
from rag_pipeline_tests.generate.test_openai_backend import FakeOpenAIServer, completion

PAPER = "attention"  # the recorded study: two models answer its 10 questions without ingestion
MODELS = ["recorded-tbank", "recorded-qwen3"]


def test_position_bias_cancels_and_verdicts_are_cached(pipeline, data_copy, monkeypatch):

    instance, state, _ = pipeline
    monkeypatch.setenv("FAKE_JUDGE_KEY", "sk-fake")
    with FakeOpenAIServer([(200, completion('{"ranking": ["A", "B"]}'))]) as server:
        registry = yaml.safe_load((data_copy / "models.yaml").read_text())
        registry["models"].append({
            "name": "fake-judge", "backend": "openai", "model": "gpt-4o", "base_url": server.base_url,
            "api_key_env": "FAKE_JUDGE_KEY", "max_retries": 0, "tasks": ["answer"],
        })
        (data_copy / "models.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True))
        sync_registry_partitions(instance)
        keys = [model_paper_key(m, PAPER) for m in MODELS]
        assert materialize_partitions(defs, instance, GENERATION_SELECTION, keys, "generate", progress=False).failed == {}
        resources = {**defs.resources, "judge": JudgeResource(model="fake-judge", max_items_per_paper=2, permutations=2)}

        assert materialize_partitions(defs, instance, ["judgments"], [PAPER], "judge", resources=resources, progress=False).failed == {}
        calls = len(server.received)
        assert calls > 0
        assert "sk-fake" not in json.dumps(server.received[0]["json"])  # the key travels only in the header
        verdicts = ArtifactStore(state / "artifacts").read_frame("judgments", PAPER)
        assert set(verdicts["model"]) == set(MODELS)
        assert not verdicts["abstained"].any()
        # Each output was shown first once and second once: mean rank 1.5 for both, bias cancelled.
        means = verdicts.groupby(["item_id", "model"])["rank"].mean()
        assert (means == 1.5).all()
        assert judge_reliability(verdicts)["position_consistency_listwise"] == 0.0

        assert materialize_partitions(defs, instance, ["judgments"], [PAPER], "again", resources=resources, progress=False).failed == {}
        assert len(server.received) == calls  # every verdict came from the judge cache
    instance.delete_dynamic_partition("models", "fake-judge")  # the session instance is shared
