"""Local generation with llama.cpp (``llama-cpp-python``): GGUF models on the CPU, several sequences at once.

The offline default. The GGUF's own chat template renders the prompt (``tokenizer.chat_template`` in
its metadata, through the same Jinja conventions as transformers), llama.cpp tokenizes and decodes.

Batching: requests are grouped by task, sorted by prompt length and cut into batches of
``spec.batch_size``. A batch is one llama.cpp context with one KV stream per sequence
(``kv_unified = false``): each prompt is prefilled on its own, then every decoding step is one
``llama_decode`` call holding the next token of every unfinished sequence, so the weights are read
once per step for the whole batch. A sequence sees only its own stream, and the kernels that round
differently with the number of rows (weight repacking, ggml's tiled K-quant product) are off, so
under greedy decoding its output does not depend on the batch it ran in (tested). Sampling draws from a generator seeded with
the registry's ``seed`` and the prompt, so it does not depend on the batch either.

Latency: a batch's wall time is shared among its requests in proportion to the tokens each one
generated, as in the transformers backend.
"""

from __future__ import annotations

import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.generate.backends.base import (
    Backend,
    BatchCallback,
    GenerationResult,
    cut_at_stop_strings,
    generate_in_batches,
    label_probabilities,
    split_thinking,
)
from rag_pipeline.generate.packaged_model import ensure_packaged_gguf, is_packaged_source
from rag_pipeline.generate.prompts import render_prompt
from rag_pipeline.generate.registry import PACKAGED_MODEL_PREFIX, ModelSpec
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.hashing import content_hash
from rag_pipeline.model_source import model_revision, package_version
from rag_pipeline.settings import StatePaths

ENGINE_DISTRIBUTION = "llama-cpp-python"
# ggml's CPU matrix product switches K-quant weights to a tiled kernel from 8 rows on, which rounds
# differently from the row-by-row kernel: a sequence's logits would depend on how many sequences share
# its decoding step, and a batched greedy output could differ from the one-at-a-time output. ggml's own
# switch turns the tiled kernel off (read once per process, before the first product; a value set in
# the environment is kept, and batch_invariant() then says whether outputs still match).
TILED_MATMUL_ENV = "GGML_CPU_TILED_MM"
THREADS_ENV = "RAG_PIPELINE_LLAMA_THREADS"  # CPU threads for llama.cpp; default: the cores this process may use
CONTEXT_ROUNDING = 256  # a batch's context is sized to its longest prompt + max_new_tokens, rounded up
TOP_LOGPROBS = 5  # alternatives kept per generated token when a caller wants log-probabilities


def engine_version() -> str:
    """``llama-cpp-python <version>`` (the generation cache keys on it), or ``... unknown``."""
    return f"{ENGINE_DISTRIBUTION} {package_version(ENGINE_DISTRIBUTION)}"


def batch_invariant() -> bool:
    """Whether llama.cpp computes a sequence's logits the same in a batch of any size here: true unless
    ggml's tiled kernel was switched back on in the environment (see ``TILED_MATMUL_ENV``). Where it is
    false, the cache key includes ``batch_size`` (:func:`rag_pipeline.generate.runner.weights_identity`)."""
    return os.environ.get(TILED_MATMUL_ENV, "0").strip() in ("0", "")


def llama_threads() -> int:
    """Threads for llama.cpp: ``$RAG_PIPELINE_LLAMA_THREADS`` or the cores this process may run on."""
    configured = os.environ.get(THREADS_ENV, "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {configured!r}")
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gguf_path(spec: ModelSpec, state: StatePaths | None = None) -> Path:
    """The GGUF file of ``spec``: the joined, verified packaged file, a local file, or the one GGUF in a directory."""
    if is_packaged_source(spec):
        return ensure_packaged_gguf(state)
    path = Path(spec.model).expanduser()
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) != 1:
            raise ModelUnavailableError(
                spec.name, f"directory {str(path)!r} holds {len(ggufs)} .gguf files; name the file itself"
            )
        path = ggufs[0]
    if not path.is_file():
        raise ModelUnavailableError(spec.name, f"GGUF file {str(path)!r} does not exist")
    if spec.revision and spec.revision.startswith("sha256:"):
        actual = model_revision(str(path))
        if actual != spec.revision:
            raise ModelUnavailableError(
                spec.name, f"GGUF file {str(path)!r} has {actual}, the registry pins {spec.revision}",
                hint="Point the entry at the pinned file, or update its revision on purpose.",
            )
    return path


def gguf_identity(spec: ModelSpec) -> str:
    """What identifies a llama-cpp model's weights without loading it: the registry's pinned
    ``sha256:`` revision, else the file's content hash (computed once per file version)."""
    if spec.revision or spec.model.startswith(PACKAGED_MODEL_PREFIX):
        return spec.revision or "unpinned packaged file"
    try:
        return model_revision(str(gguf_path(spec)))
    except ModelUnavailableError:
        return "missing"  # the load fails with the reason; the key only has to be computable


class GGUFChatTemplate:
    """A GGUF's ``tokenizer.chat_template`` with the interface :func:`render_prompt` expects of a
    tokenizer. Rendered like transformers does (sandboxed Jinja, ``trim_blocks``/``lstrip_blocks``,
    ``tojson``, ``raise_exception``, ``strftime_now``), so a model's prompt reads the same either way."""

    def __init__(self, template: str, bos_token: str = "", eos_token: str = ""):
        import json

        from jinja2 import ext
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str):
            raise TemplateError(message)

        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols]
        )
        environment.filters["tojson"] = lambda value, indent=None, ensure_ascii=False: json.dumps(
            value, indent=indent, ensure_ascii=ensure_ascii
        )
        environment.globals["raise_exception"] = raise_exception
        environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self.chat_template = template
        self._template = environment.from_string(template)
        self.bos_token = bos_token
        self.eos_token = eos_token

    def apply_chat_template(
        self,
        messages: list[dict],
        tokenize: bool = False,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        **kwargs: Any,
    ) -> str:
        text = self._template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt and not continue_final_message,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            **kwargs,
        )
        if continue_final_message:
            # As transformers: cut after the final message's text, dropping the template's end of turn.
            final = messages[-1]["content"].strip()
            if final not in text:
                raise ValueError("the chat template does not reproduce the final message; it cannot be continued")
            text = text[: text.rindex(final) + len(final)]
        return text


class _Sequence:
    """One request in flight: its prompt tokens, generated tokens and sampling state."""

    def __init__(self, index: int, prompt: list[int], limit: int, rng: np.random.Generator | None, want_logprobs: bool):
        self.index = index
        self.prompt = prompt
        self.limit = limit
        self.rng = rng
        self.want_logprobs = want_logprobs
        self.tokens: list[int] = []
        self.logprobs: list[dict] = []
        self.done = False
        self.error = ""


class LlamaCppBackend(Backend):
    """A GGUF model loaded once by llama.cpp and used for every request of a run."""

    def __init__(self, spec: ModelSpec, state: StatePaths | None = None, threads: int | None = None):
        super().__init__(spec)
        os.environ.setdefault(TILED_MATMUL_ENV, "0")  # before llama.cpp computes anything (see above)
        try:
            import llama_cpp
            from llama_cpp import _internals
        except ImportError as exc:
            raise ModelUnavailableError(
                spec.name,
                f"the llama-cpp backend needs the {ENGINE_DISTRIBUTION} package ({exc})",
                hint="Install it with the project's lock: pip install -c requirements.lock llama-cpp-python",
            ) from exc
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp's own log: errors only (its info lines would flood every run's log)
        self._llama_cpp = llama_cpp
        self._internals = _internals
        path = gguf_path(spec, state)
        self.threads = threads or llama_threads()
        params = _internals.LlamaModel.default_params()
        # No weight repacking: the repacked kernels compute one row (one sequence) and several rows in
        # different orders, so a batched greedy output could differ from the one-at-a-time output.
        params.use_extra_bufts = False
        try:
            self.model = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        except ValueError as exc:
            raise ModelUnavailableError(spec.name, f"llama.cpp could not load {str(path)!r}: {exc}") from exc
        self.path = path
        self.n_vocab = self.model.n_vocab()
        self.max_context = min(spec.context_length or self.model.n_ctx_train(), self.model.n_ctx_train())
        metadata = self.model.metadata()
        bos = self._piece(self.model.token_bos())
        eos = self._piece(self.model.token_eos())
        template = metadata.get("tokenizer.chat_template")
        self.chat_template = GGUFChatTemplate(template, bos, eos) if template else None
        self.bos_text = bos
        self.end_tokens, self.text_stops = self._terminators()
        self.resolved_revision = gguf_identity(spec)
        self._context = None
        self._context_shape: tuple[int, int] = (0, 0)  # (sequences, tokens per sequence)

    # ---- tokens ---------------------------------------------------------------------------
    def _piece(self, token: int) -> str:
        if token is None or token < 0:
            return ""
        return self.model.token_to_piece(token, special=True).rstrip(b"\0").decode("utf-8", errors="replace")

    def _terminators(self) -> tuple[set[int], list[str]]:
        """End-of-generation token ids (eos, eot, single-token stop strings) and the text stops."""
        llama_cpp = self._llama_cpp
        ends = {
            token
            for token in range(self.n_vocab)
            if llama_cpp.llama_vocab_is_eog(self.model.vocab, token)
        }
        text_stops = []
        for stop in self.spec.stop_strings:
            tokens = self.model.tokenize(stop.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) == 1:
                ends.add(tokens[0])
            else:
                text_stops.append(stop)
        return ends, text_stops

    def render(self, request: GenerationRequest) -> str:
        """The exact prompt text the model sees for ``request`` (the GGUF's chat template)."""
        return render_prompt(self.spec, request.messages, self.chat_template)

    def tokenize(self, text: str) -> list[int]:
        """Prompt tokens; a BOS is added only when the model wants one and the template did not write it."""
        add_bos = self.model.add_bos_token() and not (self.bos_text and text.startswith(self.bos_text))
        return self.model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def detokenize(self, tokens: list[int]) -> str:
        return self.model.detokenize(tokens, special=False).decode("utf-8", errors="replace")

    # ---- context ----------------------------------------------------------------------------
    def _context_for(self, sequences: int, tokens_per_sequence: int):
        """A context with one KV stream per sequence, reused while it is large enough."""
        have_sequences, have_tokens = self._context_shape
        if self._context is not None and have_sequences == sequences and have_tokens >= tokens_per_sequence:
            self._context.kv_cache_clear()
            return self._context
        self._free_context()
        params = self._internals.LlamaContext.default_params()
        params.n_seq_max = sequences
        params.n_ctx = tokens_per_sequence * sequences
        params.n_batch = params.n_ubatch = min(512, tokens_per_sequence)
        params.n_threads = params.n_threads_batch = self.threads
        params.kv_unified = False  # one stream per sequence: a sequence never attends to another's cells
        params.no_perf = True
        self._context = self._internals.LlamaContext(model=self.model, params=params, verbose=False)
        self._context_shape = (sequences, tokens_per_sequence)
        return self._context

    def _free_context(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None
            self._context_shape = (0, 0)

    # ---- generation -----------------------------------------------------------------------
    def generate(
        self, requests: list[GenerationRequest], progress: bool = True, on_batch: BatchCallback | None = None
    ) -> list[GenerationResult]:
        """Generate all requests in length-sorted batches of ``spec.batch_size``; results in request order."""
        prompts = [self.render(request) for request in requests]
        token_ids = [self.tokenize(text) for text in prompts]

        def run_batch(group, batch: list[int]) -> list[GenerationResult]:
            task, max_new_tokens = group
            limit = min(max_new_tokens or self.spec.max_new_tokens, self.spec.max_new_tokens)
            return self._generate_batch(task, limit, [(i, token_ids[i], prompts[i], requests[i].want_logprobs) for i in batch])

        return generate_in_batches(self, requests, prompts, token_ids, run_batch, progress, on_batch)

    def _generate_batch(
        self, task: str, limit: int, items: list[tuple[int, list[int], str, bool]]
    ) -> list[GenerationResult]:
        decoding = self.spec.decoding_for(task)
        sequences = []
        for index, tokens, prompt, want_logprobs in items:
            sequence = _Sequence(index, tokens, limit, self._rng(decoding, prompt), want_logprobs)
            if len(tokens) + limit > self.max_context:
                sequence.error = (
                    f"the prompt has {len(tokens)} tokens; with max_new_tokens {limit} it exceeds the "
                    f"context of {self.max_context} tokens (context_length in data/models.yaml, or the model's own)"
                )
                sequence.done = True
            sequences.append(sequence)
        runnable = [sequence for sequence in sequences if not sequence.error]
        started = time.perf_counter()
        failure = ""
        if runnable:
            try:
                self._decode(runnable, decoding)
            except Exception as exc:  # noqa: BLE001 - one failing batch must not stop the others
                failure = f"generation failed: {type(exc).__name__}: {exc}"
        wall = time.perf_counter() - started
        total = sum(len(sequence.tokens) for sequence in runnable)
        results = []
        for sequence in sequences:
            if sequence.error or failure:
                results.append(GenerationResult(error=sequence.error or failure, input_tokens=len(sequence.prompt)))
                continue
            text_tokens = [token for token in sequence.tokens if token not in self.end_tokens]
            text = cut_at_stop_strings(self.detokenize(text_tokens), self.spec.stop_strings)
            answer, thinking = split_thinking(text)
            share = len(sequence.tokens) / total if total else 1 / len(runnable)
            results.append(
                GenerationResult(
                    output=answer,
                    thinking=thinking,
                    input_tokens=len(sequence.prompt),
                    output_tokens=len(sequence.tokens),
                    latency_s=wall * share,
                    label_probabilities=label_probabilities(sequence.logprobs) if sequence.want_logprobs else None,
                )
            )
        return results

    def _decode(self, sequences: list[_Sequence], decoding: dict) -> None:
        """Prefill every prompt in its own stream, then decode all unfinished sequences step by step."""
        longest = max(len(sequence.prompt) for sequence in sequences) + sequences[0].limit
        per_sequence = min(math.ceil(longest / CONTEXT_ROUNDING) * CONTEXT_ROUNDING, self.max_context)
        context = self._context_for(len(sequences), per_sequence)
        chunk = context.params.n_batch
        batch = self._internals.LlamaBatch(n_tokens=max(chunk, len(sequences)), embd=0, n_seq_max=1, verbose=False)
        try:
            for seq_id, sequence in enumerate(sequences):
                for start in range(0, len(sequence.prompt), chunk):
                    piece = sequence.prompt[start : start + chunk]
                    self._fill(batch, [(token, start + offset, seq_id) for offset, token in enumerate(piece)], every_row=False)
                    context.decode(batch)
                self._advance(sequence, context, batch.n_tokens() - 1, decoding)
            while True:
                active = [(seq_id, s) for seq_id, s in enumerate(sequences) if not s.done]
                if not active:
                    return
                rows = [(s.tokens[-1], len(s.prompt) + len(s.tokens) - 1, seq_id) for seq_id, s in active]
                self._fill(batch, rows, every_row=True)
                context.decode(batch)
                for row, (_, sequence) in enumerate(active):
                    self._advance(sequence, context, row, decoding)
        finally:
            batch.close()

    @staticmethod
    def _fill(batch, entries: list[tuple[int, int, int]], every_row: bool) -> None:
        """Put (token, position, sequence id) rows into ``batch``, with logits for every row (a
        decoding step) or for the last one only (a prompt chunk)."""
        raw = batch.batch
        raw.n_tokens = len(entries)
        for row, (token, position, seq_id) in enumerate(entries):
            raw.token[row] = token
            raw.pos[row] = position
            raw.n_seq_id[row] = 1
            raw.seq_id[row][0] = seq_id
            raw.logits[row] = every_row or row == len(entries) - 1

    def _advance(self, sequence: _Sequence, context, row: int, decoding: dict) -> None:
        """Choose the sequence's next token from the logits of ``row`` and decide whether it is done."""
        logits = np.ctypeslib.as_array(context.get_logits_ith(row), shape=(self.n_vocab,)).astype(np.float64)
        penalty = decoding.get("repetition_penalty")
        if penalty and penalty != 1.0:
            seen = np.unique(np.asarray(sequence.prompt + sequence.tokens, dtype=np.int64))
            logits[seen] = np.where(logits[seen] > 0, logits[seen] / penalty, logits[seen] * penalty)
        token = self._sample(logits, decoding, sequence.rng) if decoding.get("do_sample") else int(np.argmax(logits))
        if sequence.want_logprobs:
            sequence.logprobs.append(self._logprob_entry(logits, token))
        sequence.tokens.append(token)
        if token in self.end_tokens or len(sequence.tokens) >= sequence.limit:
            sequence.done = True
        elif self.text_stops:
            text = self.detokenize(sequence.tokens)
            sequence.done = any(stop in text for stop in self.text_stops)

    @staticmethod
    def _rng(decoding: dict, prompt: str) -> np.random.Generator | None:
        """A generator for one request: the registry's seed and the prompt, so a draw does not depend
        on the batch or the order; unseeded sampling draws fresh entropy."""
        if not decoding.get("do_sample"):
            return None
        seed = decoding.get("seed")
        if seed is None:
            return np.random.default_rng()
        return np.random.default_rng([seed, int(content_hash(prompt, length=16), 16)])

    @staticmethod
    def _sample(logits: np.ndarray, decoding: dict, rng: np.random.Generator) -> int:
        """Temperature, then top-k, top-p and min-p filtering (transformers' order), then one draw."""
        scores = logits / float(decoding.get("temperature") or 1.0)
        order = np.argsort(-scores, kind="stable")
        top_k = decoding.get("top_k")
        if top_k:
            order = order[:top_k]
        kept = scores[order]
        probabilities = np.exp(kept - kept.max())
        probabilities /= probabilities.sum()
        top_p = decoding.get("top_p")
        if top_p is not None and top_p < 1.0:
            cut = int(np.searchsorted(np.cumsum(probabilities), top_p) + 1)
            order, probabilities = order[:cut], probabilities[:cut]
        min_p = decoding.get("min_p")
        if min_p:
            keep = probabilities >= min_p * probabilities[0]
            order, probabilities = order[keep], probabilities[keep]
        probabilities = probabilities / probabilities.sum()
        return int(order[rng.choice(len(order), p=probabilities)])

    def _logprob_entry(self, logits: np.ndarray, token: int) -> dict:
        """The chosen token and its most likely alternatives, as OpenAI's ``logprobs.content`` entries."""
        shifted = logits - logits.max()
        log_probabilities = shifted - np.log(np.exp(shifted).sum())
        alternatives = np.argpartition(-log_probabilities, TOP_LOGPROBS)[:TOP_LOGPROBS]
        alternatives = alternatives[np.argsort(-log_probabilities[alternatives])]
        return {
            "token": self._piece(token),
            "logprob": float(log_probabilities[token]),
            "top_logprobs": [
                {"token": self._piece(int(other)), "logprob": float(log_probabilities[other])} for other in alternatives
            ],
        }

    def close(self) -> None:
        """Free the context and the model (llama.cpp's memory)."""
        self._free_context()
        if getattr(self, "model", None) is not None:
            self.model.close()
            self.model = None
