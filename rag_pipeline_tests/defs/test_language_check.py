"""The language checks through Dagster: a model whose answers came back in Ukrainian fails
`answers_in_expected_language` for its partition (a warning: nothing is blocked), one answering in
Russian passes. The models are the recorded study's, one of them with its answers replaced."""

import json

import dagster as dg

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.definitions import defs
from rag_pipeline.defs.partitions import model_paper_key, sync_registry_partitions
from rag_pipeline.defs.runner import GENERATION_SELECTION, materialize_partitions
from rag_pipeline.generate.pool import MODEL_POOL

PAPER, ARXIV = "attention", "1706.03762"
UKRAINIAN = [
    "Використовувався оптимізатор Adam з параметрами β1 = 0,9, β2 = 0,98 та ε = 10^-9, а швидкість навчання змінювалася з розігрівом.",
    "Transformer замінює рекурентні шари, які найчастіше використовуються в архітектурах кодувальник-декодувальник, на багатоголову самоувагу.",
    "Ділення на корінь із dk потрібне, щоб великі скалярні добутки не заганяли softmax в області з дуже малими градієнтами.",
    "Кодувальник і декодувальник складаються зі стеку шести однакових шарів; кожен шар має самоувагу та повнозв'язну мережу.",
    "Багатоголова увага дозволяє моделі одночасно звертати увагу на інформацію з різних підпросторів представлень у різних позиціях.",
    "Позиційні кодування додають до вбудовувань інформацію про порядок слів за допомогою синусоїд різної частоти.",
    "Шар самоуваги з'єднує всі позиції сталою кількістю операцій, тоді як рекурентному шару потрібна лінійна кількість кроків.",
    "Під час навчання застосовували три види регуляризації: залишковий dropout, dropout на сумах вбудовувань і згладжування міток.",
    "На завданні перекладу з англійської на французьку велика модель Transformer досягла BLEU 41,8, що перевершило попередні моделі.",
    "Розпаралелювання можливе, бо Transformer не має рекурентних шарів і обробляє всі позиції послідовності одночасно.",
]


def _answers_in_ukrainian(data, study_model):
    path = data / "reference_study/questions.json"
    questions = json.loads(path.read_text(encoding="utf-8"))
    mine = [q for q in questions if q["arxiv_id"] == ARXIV]
    assert len(mine) == len(UKRAINIAN)
    for question, text in zip(mine, UKRAINIAN):
        question["answers"][study_model]["text"] = text
    path.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")


def _evaluation(instance, asset, key):
    from dagster._core.event_api import PartitionKeyFilter

    check = dg.AssetCheckKey(dg.AssetKey(asset), f"{asset}_in_expected_language")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [check], partition_filter=PartitionKeyFilter(key=str(key))
    ).get(check)
    assert record is not None and record.evaluation is not None, (asset, str(key))
    return record.evaluation


def test_ukrainian_answers_fail_the_language_check_and_russian_ones_pass(data_copy, state_dir):
    _answers_in_ukrainian(data_copy, "Tbank")
    MODEL_POOL.release()  # a recorded backend loaded from the unmodified study must not serve this test
    ukrainian, russian = model_paper_key("recorded-tbank", PAPER), model_paper_key("recorded-qwen3", PAPER)
    with dg.instance_for_test() as instance:
        sync_registry_partitions(instance)
        summary = materialize_partitions(defs, instance, GENERATION_SELECTION, [ukrainian, russian], "generate", progress=False)
        assert summary.failed == {}  # the language checks warn; they block nothing
        assert set(summary.succeeded) == {str(ukrainian), str(russian)}
        stored = ArtifactStore(state_dir / "artifacts").read_frame("answers", "recorded-tbank", PAPER)
        assert sorted(stored["output"]) == sorted(UKRAINIAN)

        failed = _evaluation(instance, "answers", ukrainian)
        assert not failed.passed and not failed.blocking and failed.severity == dg.AssetCheckSeverity.WARN
        assert failed.partition == str(ukrainian)
        assert failed.metadata["counts"].value == {"uk": 10}
        assert failed.metadata["share"].value == 0.0
        assert (failed.metadata["expected"].value, failed.metadata["min_share"].value) == ("ru", 0.9)
        assert failed.metadata["offending"].value[0] == [f"{PAPER}:q01", "uk"]
        assert "0 of 10 identified answers in ru (share 0.00, min 0.90; others: uk 10)" in failed.description
        assert failed.metadata["identifier"].value["identifier"] == "py3langid"

        passed = _evaluation(instance, "answers", russian)
        assert passed.passed and passed.partition == str(russian)
        assert passed.metadata["counts"].value.get("ru", 0) >= 8
        assert set(passed.metadata["counts"].value) <= {"ru", "und"}
        assert passed.metadata["share"].value == 1.0

        # The summaries were not touched: both recorded summaries of the paper are Russian.
        for key in (ukrainian, russian):
            assert _evaluation(instance, "summaries", key).passed
