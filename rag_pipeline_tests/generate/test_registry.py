"""The model registry: the shipped entries and validation of bad entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_pipeline.generate.registry import (
    ModelRegistryError,
    ModelSpec,
    get_model,
    load_models,
    models_by_name,
    read_models,
    spec_from_entry,
)
from rag_pipeline.hashing import canonical_json
from rag_pipeline.settings import REPO_ROOT


def test_shipped_registry_has_the_notebook_models_and_offline_defaults():
    specs = models_by_name()
    assert set(specs) == {
        "t-lite-instruct-0.1",
        "yandexgpt-5-lite-8b",
        "qwen3-8b",
        "qwen2.5-coder-0.5b",
        "lead-3",
        "top-chunk",
        "recorded-tbank",
        "recorded-yandexgpt",
        "recorded-qwen3",
    }
    tlite = specs["t-lite-instruct-0.1"]
    assert (tlite.model, tlite.quantization, tlite.prompt_family) == (
        "t-bank-ai/T-lite-instruct-0.1",
        "8bit",
        "tlite",
    )
    assert "<|eot_id|>" in tlite.stop_strings
    assert tlite.prefill_for("summary") == "Краткое резюме:" and tlite.prefill_for("answer") is None

    yandex = specs["yandexgpt-5-lite-8b"]
    assert yandex.quantization == "8bit" and yandex.system_role is False

    qwen3 = specs["qwen3-8b"]
    assert (
        qwen3.dtype == "bfloat16" and qwen3.quantization is None and qwen3.enable_thinking is False
    )
    summary = qwen3.decoding_for("summary")
    assert (summary["do_sample"], summary["temperature"], summary["top_p"], summary["top_k"]) == (
        True,
        0.7,
        0.8,
        20,
    )
    assert qwen3.decoding_for("answer")["do_sample"] is False  # the notebook answered greedily

    offline = {name for name, spec in specs.items() if spec.offline}
    assert offline == {
        "qwen2.5-coder-0.5b",
        "lead-3",
        "top-chunk",
        "recorded-tbank",
        "recorded-yandexgpt",
        "recorded-qwen3",
    }
    assert specs["qwen2.5-coder-0.5b"].model.startswith("packaged-gguf:")
    assert specs["lead-3"].tasks == ("summary",) and specs["top-chunk"].tasks == ("answer",)
    assert all(spec.max_new_tokens == 256 for spec in (tlite, yandex, qwen3))


def test_identity_covers_output_determining_fields_only():
    base = spec_from_entry(
        {"name": "m", "backend": "transformers", "model": "org/m", "decoding": {"do_sample": False}}
    )
    faster = spec_from_entry(
        {
            "name": "m2",
            "backend": "transformers",
            "model": "org/m",
            "batch_size": 16,
            "decoding": {"do_sample": False},
            "description": "other words",
        }
    )
    assert base.identity() == faster.identity()
    sampled = spec_from_entry(
        {
            "name": "m",
            "backend": "transformers",
            "model": "org/m",
            "decoding": {"do_sample": True, "temperature": 0.7},
        }
    )
    assert sampled.identity() != base.identity()
    other_revision = spec_from_entry(
        {"name": "m", "backend": "transformers", "model": "org/m", "revision": "abc"}
    )
    assert other_revision.identity()["revision"] == "abc"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "m", "backend": "transformers", "model": "x", "temprature": 1},
            "unknown model configuration key(s) ['temprature']",
        ),
        (
            {"name": "m", "backend": "transformers", "model": "x", "dtype": "fp8"},
            "dtype must be one of",
        ),
        (
            {"name": "m", "backend": "transformers", "model": "x", "quantization": "3bit"},
            "quantization must be one of",
        ),
        ({"name": "m", "backend": "gpt"}, "backend must be one of"),
        ({"name": "m", "backend": "transformers"}, "needs 'model'"),
        (
            {"name": "m", "backend": "transformers", "model": "x", "decoding": {"beam": 2}},
            "unknown decoding keys",
        ),
        (
            {"name": "m", "backend": "transformers", "model": "x", "decoding": {"temperature": -1}},
            "non-negative",
        ),
        (
            {"name": "m", "backend": "transformers", "model": "x", "max_new_tokens": 0},
            "max_new_tokens",
        ),
        (
            {"name": "m", "backend": "transformers", "model": "x", "tasks": ["translate"]},
            "each task must be one of",
        ),
        (
            {"name": "m", "backend": "transformers", "model": "x", "prompt_family": "llama"},
            "prompt_family",
        ),
        ({"name": "m", "backend": "openai", "model": "x"}, "needs 'base_url'"),
        (
            {
                "name": "m",
                "backend": "openai",
                "model": "x",
                "base_url": "http://h",
                "api_key": "sk-secret",
            },
            "never put an API key",
        ),
        ({"name": "m", "backend": "recorded"}, "needs 'recorded_name'"),
        (
            {"name": "m", "backend": "extractive", "extractive": {"method": "lead"}},
            "produces only tasks: [summary]",
        ),
        (
            {"name": "m", "backend": "extractive", "extractive": {"method": "random"}},
            "extractive.method",
        ),
        (
            {"name": "m", "backend": "recorded", "recorded_name": "Tbank", "quantization": "8bit"},
            "transformers backend only",
        ),
    ],
)
def test_bad_entries_fail_naming_the_model(entry, message):
    with pytest.raises(ModelRegistryError) as excinfo:
        spec_from_entry(entry, "models.yaml entry 0")
    assert message in str(excinfo.value)
    assert "model 'm'" in str(excinfo.value)
    assert "sk-secret" not in str(excinfo.value)


def test_names_must_be_slugs_and_unique(tmp_path):
    with pytest.raises(ModelRegistryError, match="invalid model name 'Qwen/Qwen3'"):
        spec_from_entry({"name": "Qwen/Qwen3", "backend": "transformers", "model": "x"})
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n  - {name: a, backend: extractive, extractive: {method: lead}, tasks: [summary]}\n"
        "  - {name: a, backend: extractive, extractive: {method: lead}, tasks: [summary]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ModelRegistryError, match="duplicate model name 'a'"):
        load_models(registry)
    with pytest.raises(ModelRegistryError, match="model registry not found"):
        load_models(tmp_path / "missing.yaml")


def test_get_model_lists_known_names_on_a_typo():
    with pytest.raises(ModelRegistryError, match="unknown model 'qwen-3'.*qwen3-8b"):
        get_model("qwen-3")


# ---- identity stability, skipped entries, content hashes ------------------------------------

SHIPPED_MODELS = REPO_ROOT / "data" / "models.yaml"
# identity() of every shipped entry, recorded from the dataclass ModelSpec before it became a
# pydantic Section: the generation cache and the score ids key on these exact values.
RECORDED_IDENTITIES = json.loads(
    (Path(__file__).parent / "shipped_model_identities.json").read_text(encoding="utf-8")
)


def test_identity_of_every_shipped_model_is_unchanged():
    specs = models_by_name(SHIPPED_MODELS)
    assert set(specs) == set(RECORDED_IDENTITIES)
    for name, recorded in RECORDED_IDENTITIES.items():
        identity = specs[name].identity()
        assert identity == recorded, name
        assert list(identity) == list(recorded), name  # same key order (str(identity) keys the pool)
        # canonical JSON tells 0 from 0.0 and 1 from 1.0, which == does not: cache keys hash it
        assert canonical_json(identity) == canonical_json(recorded), name


GOOD_MODEL = "  - {name: good, backend: extractive, extractive: {method: lead}, tasks: [summary]}\n"


def test_an_invalid_entry_is_skipped_and_reported_with_file_entry_and_field(tmp_path, caplog):
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n"
        + GOOD_MODEL
        + "  - {name: broken, backend: transformers, model: org/m, dtype: fp8}\n"
        + "  - {name: Bad/Name, backend: extractive}\n"
        + "  - {name: other, backend: recorded, recorded_name: Qwen3}\n",
        encoding="utf-8",
    )
    report = read_models(registry)
    assert [spec.name for spec in report.entries] == ["good", "other"]
    assert [(error.index, error.key) for error in report.errors] == [(1, "broken"), (2, "Bad/Name")]
    broken, bad_name = (str(error) for error in report.errors)
    assert broken.startswith(f"{registry} entry 1: model 'broken': dtype must be one of")
    assert "dtype must be one of" in broken and "'fp8'" in broken
    assert bad_name.startswith(f"{registry} entry 2: ") and "invalid model name 'Bad/Name'" in bad_name
    assert all(error.path == registry for error in report.errors)

    with caplog.at_level("WARNING"):
        assert [spec.name for spec in load_models(registry)] == ["good", "other"]
    assert f"{registry} entry 1: model 'broken'" in caplog.text
    assert set(models_by_name(registry)) == {"good", "other"}
    with pytest.raises(ModelRegistryError, match=r"model 'broken' is invalid: .*entry 1.*dtype"):
        get_model("broken", registry)
    assert get_model("other", registry).recorded_name == "Qwen3"


def test_every_invalid_field_of_an_entry_is_named(tmp_path):
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n  - name: m\n    backend: transformers\n    model: x\n"
        "    max_new_tokens: 0\n    decoding: {top_k: 1.5}\n    task_decoding: {answer: {seed: -1}}\n",
        encoding="utf-8",
    )
    (error,) = read_models(registry).errors
    lines = error.message.splitlines()
    assert [line.split(": ")[2] for line in lines] == [
        "decoding.top_k",
        "task_decoding.answer.seed",
        "max_new_tokens",
    ]
    assert all(line.startswith(f"{registry} entry 0: model 'm': ") for line in lines)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [\n", "not valid YAML"),
        ("- {name: a}\n", "expected a mapping with a 'models' list"),
        ("models: {name: a}\n", "expected a mapping with a 'models' list"),
    ],
)
def test_a_broken_registry_file_still_raises(tmp_path, text, message):
    registry = tmp_path / "models.yaml"
    registry.write_text(text, encoding="utf-8")
    with pytest.raises(ModelRegistryError, match=message):
        read_models(registry)


def test_duplicates_raise_even_next_to_a_skipped_entry(tmp_path):
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n" + GOOD_MODEL + "  - {name: x, backend: gpt}\n" + GOOD_MODEL, encoding="utf-8"
    )
    with pytest.raises(ModelRegistryError, match="duplicate model name 'good'"):
        read_models(registry)


def test_direct_construction_and_replace_validate():
    spec = spec_from_entry({"name": "m", "backend": "transformers", "model": "org/m"})
    assert ModelSpec(name="m", backend="transformers", model="org/m") == spec
    assert spec.replace(max_new_tokens=5).max_new_tokens == 5 and spec.max_new_tokens == 256
    assert spec.replace(batch_size=4).identity() == spec.identity()
    with pytest.raises(ModelRegistryError, match="model 'm': max_new_tokens"):
        spec.replace(max_new_tokens=0)
    with pytest.raises(ValueError, match="invalid model name"):
        ModelSpec(name="Not A Slug", backend="transformers", model="org/m")


def test_numbers_keep_their_yaml_type_in_the_identity():
    as_int = spec_from_entry({"name": "m", "backend": "transformers", "model": "o/m", "decoding": {"temperature": 1}})
    as_float = spec_from_entry(
        {"name": "m", "backend": "transformers", "model": "o/m", "decoding": {"temperature": 1.0}}
    )
    assert as_int.decoding_for("summary") == {"temperature": 1}
    assert canonical_json(as_int.identity()) != canonical_json(as_float.identity())
    assert as_int != as_float and hash(as_int) != hash(as_float)
    # an explicit null is an override (it unsets the base value for that task); absent is not
    nulled = spec_from_entry(
        {
            "name": "m",
            "backend": "transformers",
            "model": "o/m",
            "decoding": {"temperature": 0.5},
            "task_decoding": {"answer": {"temperature": None}},
        }
    )
    assert nulled.decoding_for("answer") == {"temperature": None}
    assert nulled.decoding_for("summary") == {"temperature": 0.5}


def _hashes(registry: Path, text: str) -> dict[str, str]:
    registry.write_text(text, encoding="utf-8")
    return {spec.name: spec.content_hash() for spec in load_models(registry)}


def test_content_hash_covers_exactly_the_entry_own_settings(tmp_path):
    registry = tmp_path / "models.yaml"
    template = (
        "models:\n"
        "  - name: a\n    backend: transformers\n    model: org/a\n"
        "    prompt_family: {family}\n    decoding: {decoding}\n    max_new_tokens: {tokens}\n"
        "  - name: b\n    backend: transformers\n    model: org/b\n    decoding: {b_decoding}\n"
    )
    settings = {"family": "default", "decoding": "{do_sample: false}", "tokens": 64, "b_decoding": "{seed: 1}"}
    base = _hashes(registry, template.format(**settings))
    assert base["a"] != base["b"]
    for change in (
        {"decoding": "{do_sample: true, temperature: 0.7}"},
        {"tokens": 65},
        {"family": "qwen3"},
    ):
        changed = _hashes(registry, template.format(**{**settings, **change}))
        assert changed["a"] != base["a"], change
        assert changed["b"] == base["b"], change
    other_changed = _hashes(registry, template.format(**{**settings, "b_decoding": "{seed: 2}"}))
    assert other_changed["a"] == base["a"] and other_changed["b"] != base["b"]

    # key order, flow vs block style and comments do not matter
    reordered = _hashes(
        registry,
        "# a comment\nmodels:\n"
        "  - max_new_tokens: 64   # tokens\n    decoding:\n      do_sample: false\n"
        "    prompt_family: default\n    model: org/a\n    backend: transformers\n    name: a\n"
        "  - {decoding: {seed: 1}, model: org/b, backend: transformers, name: b}\n",
    )
    assert reordered == base


def test_a_key_pasted_into_api_key_env_is_not_echoed():
    with pytest.raises(ModelRegistryError, match="model 'm': api_key_env must be the NAME") as excinfo:
        spec_from_entry(
            {"name": "m", "backend": "openai", "model": "x", "base_url": "http://h", "api_key_env": "sk-secret"}
        )
    assert "sk-secret" not in str(excinfo.value)
