"""The judge with a guarantee through Dagster: labels → calibration → cascade verdicts → report.

Two judges behind `FakeOpenAIServer` (a test fake: no chat API is reachable here), registered as
OpenAI-compatible models: ``fake-biased`` always answers "A" (pure position bias), ``fake-gpt4o``
answers as the notebook's GPT-4o ranked the outputs and returns token log-probabilities. The
cascade must refuse to certify the first, certify the second, and let it decide every pair.
"""

import json
import math
import re

import yaml

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.definitions import defs
from rag_pipeline.defs.inputs import record_observations
from rag_pipeline.defs.partitions import sync_registry_partitions
from rag_pipeline.defs.resources import JudgeResource
from rag_pipeline.defs.runner import GENERATION_SELECTION, materialize_partitions, model_paper_key
from rag_pipeline.defs.staleness import stale_or_missing
from rag_pipeline.evaluate.leaderboard import find_nan
from rag_pipeline.reference_study import load_study_outputs
from rag_pipeline_tests.generate.test_openai_backend import FakeOpenAIServer, completion

PAPER = "attention"
MODELS = ["recorded-tbank", "recorded-qwen3"]


def shown(body) -> list[str]:
    return re.findall(r"Ответ [AB]:\n<<<\n(.*?)\n>>>", body["messages"][-1]["content"], flags=re.DOTALL)


def gpt4o_like(ranks: dict[str, float]):
    """Prefers the output GPT-4o ranked better (looked up by its first 120 characters)."""

    def reply(body):
        first, second = (ranks.get(text[:120], 2.0) for text in shown(body))
        label = "A" if first <= second else "B"
        other = "B" if label == "A" else "A"
        answer = completion(f'{{"winner": "{label}"}}')
        answer["choices"][0]["logprobs"] = {"content": [
            {"token": '{"', "logprob": 0.0, "top_logprobs": []},
            {"token": label, "logprob": math.log(0.9), "top_logprobs": [
                {"token": label, "logprob": math.log(0.9)}, {"token": other, "logprob": math.log(0.1)}]},
        ]}
        return answer

    return reply


def register(data_copy, name, server):
    registry = yaml.safe_load((data_copy / "models.yaml").read_text())
    registry["models"].append({"name": name, "backend": "openai", "model": "gpt-4o", "base_url": server.base_url,
                               "api_key_env": "FAKE_JUDGE_KEY", "max_retries": 0, "tasks": ["answer"],
                               "batch_size": 4})
    (data_copy / "models.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True))


def test_cascade_certifies_the_good_judge_escalates_past_the_biased_one_and_reports_it(pipeline, data_copy, monkeypatch):
    instance, state, _ = pipeline
    monkeypatch.setenv("FAKE_JUDGE_KEY", "sk-fake")
    outputs = load_study_outputs()
    ranks = {text[:120]: rank for text, rank in zip(outputs["output"], outputs["judge_rank"])}
    with FakeOpenAIServer([(200, completion('{"winner": "A"}'))]) as biased, \
            FakeOpenAIServer([("fn", gpt4o_like(ranks))]) as strong:
        register(data_copy, "fake-biased", biased)
        register(data_copy, "fake-gpt4o", strong)
        sync_registry_partitions(instance)
        keys = [model_paper_key(m, PAPER) for m in MODELS]
        assert materialize_partitions(defs, instance, GENERATION_SELECTION, keys, "generate", progress=False).failed == {}
        judge = JudgeResource(model="fake-biased", modes=["cascade"], cascade=["fake-biased", "fake-gpt4o"],
                              alpha=0.2, delta=0.1, annotators=3, shots=1, max_label_pairs=60, max_items_per_paper=3)
        resources = {**defs.resources, "judge": judge}
        store = ArtifactStore(state / "artifacts")
        # Before any calibration the cascade waits (no verdicts, a note), it does not fail the paper.
        assert materialize_partitions(defs, instance, ["judgments"], [PAPER], "early", resources=resources,
                                      progress=False).failed == {}
        assert store.read_frame("judgments", PAPER).empty and not biased.received and not strong.received
        for asset in ("judge_labels", "judge_calibration"):
            assert materialize_partitions(defs, instance, [asset], [None], asset, resources=resources,
                                          progress=False).failed == {}
        table = store.read_frame("judge_calibration")
        by_judge = table.set_index("judge")
        assert by_judge.loc["fake-biased", "threshold"] is None or str(by_judge.loc["fake-biased", "threshold"]) == "<NA>"
        assert float(by_judge.loc["fake-gpt4o", "threshold"]) == 1.0
        assert float(by_judge.loc["cascade", "heldout_coverage"]) > 0.9
        assert float(by_judge.loc["cascade", "heldout_agreement"]) == 1.0
        assert float(by_judge.loc["fake-gpt4o", "ece_logprob"]) >= 0  # token log-probabilities reached calibration
        assert by_judge.loc["fake-gpt4o", "annotator_kind"] == "reference_judge"
        assert all("logprobs" in r["json"] and r["json"]["top_logprobs"] == 5 for r in strong.received)
        assert "sk-fake" not in json.dumps([r["json"] for r in strong.received])

        asked_biased = len(biased.received)
        assert materialize_partitions(defs, instance, ["judgments"], [PAPER], "judge", resources=resources,
                                      progress=False).failed == {}
        verdicts = store.read_frame("judgments", PAPER)
        assert set(verdicts["mode"]) == {"cascade"}
        assert len(biased.received) == asked_biased  # an uncertified judge is not asked: it would escalate all
        decided = verdicts[~verdicts["abstained"]]
        assert len(decided) > 0 and set(decided["decided_by"]) == {"fake-gpt4o"}
        assert decided["escalated"].all() and decided["escalation"].str.contains("fake-biased: not certified").all()
        assert find_nan({"judgments": verdicts}) == []

        assert materialize_partitions(defs, instance, ["leaderboard"], [None], "leaderboard", progress=False).failed == {}
        report = (state / "reports" / "report.html").read_text(encoding="utf-8")
        assert "Гарантия судьи" in report and "ранги GPT-4o" in report
        assert "judge_guaranteed_win_rate" in report and "Ответы рядом" in report

        # A new label file is a new input version: labels, calibration and judgments turn stale.
        labels_dir = data_copy / "labels"
        extra = store.read_frame("judge_labels").head(3).drop(columns=["label_id", "source"])
        extra.assign(annotator="a person", annotator_kind="human").to_csv(labels_dir / "mine.csv", index=False)
        record_observations(instance)
        assert stale_or_missing(defs, instance, ["judge_labels"], [None])
        assert materialize_partitions(defs, instance, ["judge_labels"], [None], "labels", resources=resources,
                                      progress=False).failed == {}
        assert stale_or_missing(defs, instance, ["judge_calibration"], [None])
    for name in ("fake-biased", "fake-gpt4o"):
        instance.delete_dynamic_partition("models", name)  # the session instance is shared
