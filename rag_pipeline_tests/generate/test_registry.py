"""The model registry: the shipped entries and validation of bad entries."""

from __future__ import annotations

import pytest

from rag_pipeline.generate.registry import (
    ModelRegistryError,
    get_model,
    load_models,
    models_by_name,
    spec_from_entry,
)


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
            "unknown keys ['temprature']",
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
