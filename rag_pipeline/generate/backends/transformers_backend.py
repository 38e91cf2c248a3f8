"""Local generation with transformers: CPU or CUDA, bf16/fp16/fp32, bitsandbytes 8/4-bit, GGUF.

Batching: prompts are rendered with the model's chat template, grouped by task (tasks may decode
differently), sorted by token length (similar lengths share a batch, so little padding), cut into
batches of ``spec.batch_size`` and left-padded; results come back in request order. Under greedy
decoding a batched output equals the one-at-a-time output (tested).

Latency: a batch's wall time is shared among its requests in proportion to the tokens each one
generated (equal shares if none), so the per-item latencies of a run add up to its generation time
and a batched run reports the per-item cost it actually achieved.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.generate.backends.base import (
    Backend,
    BatchCallback,
    GenerationResult,
    cut_at_stop_strings,
    generate_in_batches,
    split_thinking,
)
from rag_pipeline.generate.packaged_model import PACKAGED_GGUF_NAME, ensure_packaged_model, is_packaged_source
from rag_pipeline.generate.prompts import render_prompt
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.settings import StatePaths

_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p")


def resolve_model_source(
    spec: ModelSpec, state: StatePaths | None = None
) -> tuple[str, str | None, bool]:
    """Where to load ``spec`` from: (directory or hub id, GGUF file name or None, is_local)."""
    if is_packaged_source(spec):
        directory = ensure_packaged_model(Path(PACKAGED_GGUF_NAME).stem, state)
        return str(directory), None, True
    path = Path(spec.model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name, True
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return str(path), ggufs[0].name, True
        return str(path), None, True
    if spec.model.startswith(("/", "./", "../", "~")) or spec.model.endswith(".gguf"):
        raise ModelUnavailableError(spec.name, f"local path {spec.model!r} does not exist")
    return spec.model, None, False


def _torch_dtype(name: str):
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(
        name, "auto"
    )


class TransformersBackend(Backend):
    """A causal LM loaded once and used for every request of a run.

    ``model`` and ``tokenizer`` may be passed ready-made (benchmarks, tests); otherwise they are
    loaded from ``spec.model``.
    """

    def __init__(
        self,
        spec: ModelSpec,
        state: StatePaths | None = None,
        model: Any = None,
        tokenizer: Any = None,
    ):
        super().__init__(spec)
        import torch

        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if model is None or tokenizer is None:
            model, tokenizer = self._load(state)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.eos_token_ids, self.text_stops = self._terminators()
        # The hub's commit hash when loaded from the hub; else the registry's revision.
        self.resolved_revision = getattr(model.config, "_commit_hash", None) or spec.revision

    # ---- loading --------------------------------------------------------------------------
    def _load(self, state: StatePaths | None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        spec = self.spec
        if spec.quantization and self.device != "cuda":
            raise ModelUnavailableError(
                spec.name,
                f"quantization {spec.quantization!r} uses bitsandbytes, which needs a CUDA GPU; this machine has none",
                hint="Run this model on a GPU machine, or set `quantization: null` (and a dtype) for a CPU run.",
            )
        source, gguf_file, is_local = resolve_model_source(spec, state)
        common: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
        if gguf_file:
            common["gguf_file"] = gguf_file
        if not is_local and spec.revision:
            common["revision"] = spec.revision
        model_kwargs: dict[str, Any] = {"dtype": _torch_dtype(spec.dtype)}
        if spec.quantization:
            from transformers import BitsAndBytesConfig

            compute = (
                self._torch.bfloat16
                if spec.dtype in ("auto", "bfloat16")
                else _torch_dtype(spec.dtype)
            )
            model_kwargs["quantization_config"] = (
                BitsAndBytesConfig(load_in_8bit=True)
                if spec.quantization == "8bit"
                else BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_compute_dtype=compute, bnb_4bit_quant_type="nf4"
                )
            )
            model_kwargs["device_map"] = "auto"
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **common)
            model = AutoModelForCausalLM.from_pretrained(source, **common, **model_kwargs)
        except (OSError, ValueError) as exc:
            where = (
                "local copy"
                if is_local
                else "hub id (no local copy, and the hub is unreachable or lacks it)"
            )
            raise ModelUnavailableError(
                spec.name, f"{source!r} as {where}: {type(exc).__name__}: {exc}"
            ) from exc
        if not spec.quantization:
            model = model.to(self.device)
        return model, tokenizer

    def _terminators(self) -> tuple[list[int], list[str]]:
        """End-of-turn token ids (eos + single-token stop strings such as <|eot_id|>) and text stops."""
        ids: list[int] = []
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        for candidate in (configured if isinstance(configured, list) else [configured]) + [
            self.tokenizer.eos_token_id
        ]:
            if isinstance(candidate, int) and candidate not in ids:
                ids.append(candidate)
        text_stops = []
        vocab = self.tokenizer.get_vocab()
        for stop in self.spec.stop_strings:
            if stop in vocab:
                if vocab[stop] not in ids:
                    ids.append(vocab[stop])
            else:
                text_stops.append(stop)
        return ids, text_stops

    # ---- generation -----------------------------------------------------------------------
    def render(self, request: GenerationRequest) -> str:
        """The exact prompt text the model sees for ``request``."""
        return render_prompt(self.spec, request.messages, self.tokenizer)

    def generate(
        self, requests: list[GenerationRequest], progress: bool = True, on_batch: BatchCallback | None = None
    ) -> list[GenerationResult]:
        """Generate all requests in length-sorted, left-padded batches; results in request order."""
        prompts = [self.render(request) for request in requests]
        token_ids = [
            self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in prompts
        ]
        return generate_in_batches(
            self, requests, prompts, token_ids,
            lambda group, batch: self._generate_batch(group, [token_ids[i] for i in batch]),
            progress, on_batch,
        )

    def _generation_kwargs(self, task: str, max_new_tokens: int | None = None) -> dict[str, Any]:
        decoding = self.spec.decoding_for(task)
        kwargs: dict[str, Any] = {
            "max_new_tokens": min(max_new_tokens or self.spec.max_new_tokens, self.spec.max_new_tokens),
            "do_sample": bool(decoding.get("do_sample")),
            "eos_token_id": self.eos_token_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if kwargs["do_sample"]:
            kwargs.update(
                {key: decoding[key] for key in _SAMPLING_KEYS if decoding.get(key) is not None}
            )
        else:
            # Greedy: neutralise sampling defaults a model's generation_config may carry (Qwen3's do).
            kwargs.update({"temperature": None, "top_p": None, "top_k": None, "min_p": None})
        if decoding.get("repetition_penalty") is not None:
            kwargs["repetition_penalty"] = decoding["repetition_penalty"]
        if self.text_stops:
            kwargs["stop_strings"] = list(self.text_stops)
            kwargs["tokenizer"] = self.tokenizer
        return kwargs

    def _generate_batch(self, group: tuple[str, int | None], batch_ids: list[list[int]]) -> list[GenerationResult]:
        task, max_new_tokens = group
        torch = self._torch
        width = max(len(ids) for ids in batch_ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor(
            [[pad] * (width - len(ids)) + ids for ids in batch_ids], device=self.model.device
        )
        attention_mask = torch.tensor(
            [[0] * (width - len(ids)) + [1] * len(ids) for ids in batch_ids],
            device=self.model.device,
        )
        seed = self.spec.decoding_for(task).get("seed")
        if seed is not None:
            torch.manual_seed(seed)
        output = None
        failure = ""
        out_of_memory = False
        try:
            started = time.perf_counter()
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    **self._generation_kwargs(task, max_new_tokens),
                )
            wall = time.perf_counter() - started
            new_tokens = output[:, width:].tolist()
        except torch.cuda.OutOfMemoryError:
            out_of_memory = True
            failure = (
                f"CUDA out of memory generating a batch of {len(batch_ids)} prompts of up to {width} tokens "
                f"(batch_size={self.spec.batch_size}, max_new_tokens={self.spec.max_new_tokens}); "
                "lower batch_size in data/models.yaml"
            )
        except Exception as exc:  # noqa: BLE001 - one failing batch must not stop the others
            failure = f"generation failed: {type(exc).__name__}: {exc}"
        if failure:
            # Freed outside the except block: the traceback there still references the batch's tensors.
            del output
            self._free_memory()
            return [GenerationResult(error=failure, input_tokens=len(ids), out_of_memory=out_of_memory) for ids in batch_ids]

        ends = set(self.eos_token_ids) | {pad}
        generated = []
        for tokens in new_tokens:
            stop = next((position for position, token in enumerate(tokens) if token in ends), None)
            generated.append(tokens if stop is None else tokens[: stop + 1])
        total = sum(len(tokens) for tokens in generated)
        results = []
        for ids, tokens in zip(batch_ids, generated):
            # The end token counts as generated but is not part of the text.
            text_tokens = tokens[:-1] if tokens and tokens[-1] in ends else tokens
            text = self.tokenizer.decode(text_tokens, skip_special_tokens=True)
            text = cut_at_stop_strings(text, self.spec.stop_strings)
            answer, thinking = split_thinking(text)
            share = len(tokens) / total if total else 1 / len(batch_ids)
            results.append(
                GenerationResult(
                    output=answer,
                    thinking=thinking,
                    input_tokens=len(ids),
                    output_tokens=len(tokens),
                    latency_s=wall * share,
                )
            )
        return results

    def _free_memory(self) -> None:
        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()

    def close(self) -> None:
        """Drop the model and tokenizer and return their memory (GPU memory too)."""
        self.model = None
        self.tokenizer = None
        self._free_memory()
