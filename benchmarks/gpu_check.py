"""GPU check: the notebook's models at their real sizes, with random weights, through our own code.

Runs on one GPU in a few minutes without a model hub or weights: each model is built from a
configuration file in benchmarks/gpu/configs (shape only) with random weights and the small
tokenizer benchmarks/gpu/tokenizer.json, saved to a temporary directory, then loaded and used
exactly as the pipeline does (docs/gpu.md has the figures and the table of runs):

- LLMs through ``TransformersBackend`` with the registry's entries (data/models.yaml): the
  Llama-3-8B shape (T-lite / YandexGPT family) in bf16 and in 8-bit (``quantization: 8bit``,
  bitsandbytes), the Qwen3-8B shape in bf16. RAG answer prompts built by ``answer_messages`` from
  the reference study's questions; greedy; tokens/s one request at a time (the notebook's loop)
  against batches of 8 and 32, identical outputs checked, time to first token, peak memory.
- The bge-m3 shape through ``load_embedder`` (chunks/s) and the bge-reranker-v2-m3 shape through
  ``load_reranker`` (pairs/s).
- One model resident at a time: after each model is closed, the memory allocated is compared with
  the memory allocated before it was loaded.

Without CUDA (or with ``--dry-run``) the same code runs with tiny hidden sizes and layers (a CPU
dry run, in ``make test``). Prints one JSON object and writes it under ``--out``.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu      # make gpu-check
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))  # generation.py's helpers, when imported as a module
# Everything is local: a hub lookup would only stall on a machine without network.
for _variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GPU_DIR = ROOT / "benchmarks" / "gpu"
DEFAULT_CONFIG_DIR = GPU_DIR / "configs"
DEFAULT_TOKENIZER = GPU_DIR / "tokenizer.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu"
REFERENCE_STUDY = ROOT / "data" / "reference_study"

SCHEMA_VERSION = 1
TARGET_SPEEDUP = 10.0  # batched 8B generation vs the notebook's one-at-a-time loop
# Memory still allocated after a model is closed, beyond what was allocated before it loaded,
# that counts as freed: allocator and cuBLAS workspaces, far below one layer of an 8B model.
FREED_TOLERANCE_BYTES = 128 * 2**20
WHEELS_HINT = "pip install --no-index --find-links .gpu-wheels bitsandbytes pydantic"

LLAMA3_TEMPLATE = (  # Meta-Llama-3-Instruct's chat template (T-lite uses it)
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN3_TEMPLATE = (  # Qwen3's chat template without tools: ChatML, empty think block when thinking is off
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}"
    "{% endif %}{% endif %}"
)
# Which special tokens of benchmarks/gpu/tokenizer.json each family uses.
TOKENIZER_FAMILIES = {
    "llama3": {
        "tokens": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
        "chat_template": LLAMA3_TEMPLATE,
        "model_max_length": 8192,
    },
    "qwen3": {
        "tokens": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        "chat_template": QWEN3_TEMPLATE,
        "model_max_length": 40960,
    },
    "xlm-roberta": {
        "tokens": {
            "bos_token": "<s>",
            "eos_token": "</s>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
            "mask_token": "<mask>",
        },
        "chat_template": None,
        "model_max_length": 8192,
        # XLM-R's class: FlagEmbedding builds pairs with its special-token and token-type rules.
        # (transformers 5 rebuilds that class from a Unigram vocabulary, so there the generic class.)
        "class": "XLMRobertaTokenizerFast",
    },
}
# The dry run keeps every file and code path but shrinks the networks to seconds on a CPU.
TINY = {
    "llama": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
    "qwen3": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_window_layers": 2,
    },
    "xlm-roberta": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
}


@dataclass(frozen=True)
class Shape:
    """One model of the check: its configuration file, tokenizer family and registry entry."""

    name: str
    config: str
    family: str
    registry: str | None = None  # data/models.yaml entry whose settings the LLM runs with


LLAMA3 = Shape("llama3-8b", "llama3-8b.json", "llama3", "t-lite-instruct-0.1")
QWEN3 = Shape("qwen3-8b", "qwen3-8b.json", "qwen3", "qwen3-8b")
BGE_M3 = Shape("bge-m3", "bge-m3.json", "xlm-roberta")
RERANKER = Shape("bge-reranker-v2-m3", "bge-reranker-v2-m3.json", "xlm-roberta")
SHAPES = (LLAMA3, QWEN3, BGE_M3, RERANKER)
PHASES = ("llama3-8b", "llama3-8b-8bit", "qwen3-8b", "embedder", "reranker")


class CheckError(Exception):
    """The check cannot start (a missing file, a missing package); the message says which."""


class PhaseError(Exception):
    """A measured step went wrong (a generation error, a wrong shape)."""


def log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


# ---- inputs ----------------------------------------------------------------------------------
def read_shape(config_dir: Path, shape: Shape) -> dict:
    """The configuration file of ``shape`` as a dict (its ``_comment`` dropped)."""
    path = config_dir / shape.config
    if not path.is_file():
        raise CheckError(
            f"missing model configuration {path} (the {shape.name} shape); "
            f"the check reads {[s.config for s in SHAPES]} from {config_dir}"
        )
    try:
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckError(f"model configuration {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "model_type" not in data or not data.get("architectures"):
        raise CheckError(f"model configuration {path} needs 'model_type' and 'architectures'")
    data.pop("_comment", None)
    return data


def check_inputs(args) -> dict[str, dict]:
    """Read every configuration and the tokenizer before any heavy import: fail in a second."""
    shapes = {shape.name: read_shape(args.config_dir, shape) for shape in SHAPES}
    if not args.tokenizer.is_file():
        raise CheckError(f"missing tokenizer {args.tokenizer} (rebuild it: python benchmarks/gpu/build_tokenizer.py)")
    for name in ("questions.json", "summaries.json"):
        if not (REFERENCE_STUDY / name).is_file():
            raise CheckError(f"missing {REFERENCE_STUDY / name} (the prompts are built from it)")
    return shapes


def import_project() -> None:
    """Import the project's generation and index code; a missing package is named with the fix."""
    for module in (
        "rag_pipeline.generate.backends.transformers_backend",
        "rag_pipeline.index.embedders",
        "rag_pipeline.index.rerankers",
    ):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            raise CheckError(
                f"importing {module} needs the package {exc.name!r}, which is not installed; "
                f"carry its wheel (docs/gpu.md) and install it, e.g. {WHEELS_HINT}"
            ) from exc


def corpus_chunks() -> dict[str, list[str]]:
    """Russian text per paper of the reference study (summaries and answers) cut as the pipeline cuts.

    800/100 characters: the notebook's chunking, through the pipeline's own ``chunk_text``.
    """
    from rag_pipeline.ingest.chunking import chunk_text

    texts: dict[str, list[str]] = {}
    for paper in json.loads((REFERENCE_STUDY / "summaries.json").read_text("utf-8")):
        parts = texts.setdefault(paper["arxiv_id"], [])
        parts.append(paper["reference_summary"])
        parts += [model.get("summary") or "" for model in paper["models"].values()]
    for question in json.loads((REFERENCE_STUDY / "questions.json").read_text("utf-8")):
        parts = texts.setdefault(question["arxiv_id"], [])
        parts.append(question["reference_answer"])
        parts += [answer.get("text") or "" for answer in question["answers"].values()]
    return {
        paper: [
            chunk.text for chunk in chunk_text(f"paper-{paper.replace('.', '-')}", "\n\n".join(p for p in parts if p))
        ]
        for paper, parts in texts.items()
    }


def questions() -> list[dict]:
    return json.loads((REFERENCE_STUDY / "questions.json").read_text("utf-8"))


def answer_requests_for(spec, count: int, chunks: dict[str, list[str]]) -> list:
    """``count`` RAG answer requests: a study question and two chunks of its paper (top_n=2)."""
    from rag_pipeline.generate.prompts import answer_messages
    from rag_pipeline.generate.types import GenerationRequest

    study = questions()
    requests = []
    for i in range(count):
        question = study[i % len(study)]
        paper_chunks = chunks[question["arxiv_id"]]
        picked = [paper_chunks[(i + k) % len(paper_chunks)] for k in range(2)]
        requests.append(
            GenerationRequest(
                task="answer",
                paper_id=question["arxiv_id"],
                item_id=f"gpu-check:{i}",
                messages=answer_messages(spec, question["question"], picked),
            )
        )
    return requests


# ---- memory ----------------------------------------------------------------------------------
class Memory:
    """GPU memory figures from PyTorch's allocator (None on a CPU, where only collection is checked)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")

    def release(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def allocated(self) -> int | None:
        return int(self.torch.cuda.memory_allocated()) if self.cuda else None

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return gib(self.torch.cuda.max_memory_allocated()) if self.cuda else None

    def freed(self, before: int | None, model_ref: weakref.ref) -> dict:
        """Whether the model is gone: collected, and allocated memory back to its pre-load level."""
        self.release()
        after = self.allocated()
        delta = None if after is None or before is None else after - before
        collected = model_ref() is None
        return {
            "allocated_before_load_bytes": before,
            "allocated_after_close_bytes": after,
            "delta_bytes": delta,
            "model_collected": collected,
            "freed": collected and (delta is None or delta <= FREED_TOLERANCE_BYTES),
        }


def gib(value: float | None) -> float | None:
    return None if value is None else round(value / 2**30, 3)


# ---- building random models ------------------------------------------------------------------
def make_tokenizer(tokenizer_file: Path, family: str):
    """A transformers fast tokenizer over benchmarks/gpu/tokenizer.json with ``family``'s specials."""
    import transformers
    from tokenizers import Tokenizer, processors

    settings = TOKENIZER_FAMILIES[family]
    backend = Tokenizer.from_file(str(tokenizer_file))
    tokens = settings["tokens"]
    missing = [t for t in tokens.values() if backend.token_to_id(t) is None]
    if missing:
        raise CheckError(f"{tokenizer_file} lacks the special tokens {missing} of the {family} family")
    if "sep_token" in tokens:  # encoders: <s> A </s> and <s> A </s></s> B </s> as XLM-R
        cls, sep = tokens["cls_token"], tokens["sep_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} {sep} $B {sep}",
            special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
        )
    major = int(transformers.__version__.split(".")[0])
    tokenizer_class = getattr(
        transformers, settings.get("class") if major < 5 and settings.get("class") else "PreTrainedTokenizerFast"
    )
    tokenizer = tokenizer_class(tokenizer_object=backend, model_max_length=settings["model_max_length"], **tokens)
    if settings["chat_template"]:
        tokenizer.chat_template = settings["chat_template"]
    return tokenizer


def model_config(shape_data: dict, tokenizer, dry_run: bool):
    """The transformers configuration: the file's shape, the tokenizer's ids, tiny in a dry run."""
    from transformers import AutoConfig

    data = dict(shape_data)
    model_type = data.pop("model_type")
    if dry_run:
        if model_type not in TINY:
            raise CheckError(f"no tiny (dry-run) sizes for model_type {model_type!r}; add them to TINY")
        data.update(TINY[model_type])
        data["vocab_size"] = len(tokenizer)
    elif data["vocab_size"] < len(tokenizer):
        raise CheckError(f"vocab_size {data['vocab_size']} is below the tokenizer's {len(tokenizer)}")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        token = getattr(tokenizer, key.replace("_id", ""), None)
        data[key] = tokenizer.convert_tokens_to_ids(token) if token else None
    return AutoConfig.for_model(model_type, **data)


def build_random_model(shape: Shape, shape_data: dict, args, directory: Path, device: str, dtype) -> dict:
    """Random weights of ``shape`` saved with its tokenizer to ``directory``; the GPU copy is freed."""
    import torch
    import transformers

    memory = Memory(device)
    tokenizer = make_tokenizer(args.tokenizer, shape.family)
    config = model_config(shape_data, tokenizer, args.dry_run)
    model_class = getattr(transformers, config.architectures[0])
    memory.release()  # the baseline must not count a previous phase's garbage
    before = memory.allocated()
    started = time.perf_counter()
    torch.manual_seed(0)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = model_class(config)
    finally:
        torch.set_default_dtype(default_dtype)
    parameters = sum(p.numel() for p in model.parameters())
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    free = shutil.disk_usage(directory.parent).free
    if free < size * 1.1:
        raise CheckError(
            f"{directory.parent} has {gib(free)} GiB free; saving {shape.name} needs {gib(size * 1.1)} GiB"
        )
    if hasattr(model, "get_output_embeddings") and model.get_output_embeddings() is not None:
        restrict_to_text_tokens(model, tokenizer)
    model.eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if shape.family == "xlm-roberta" and config.architectures[0] == "XLMRobertaModel":
        write_sentence_transformers_layout(directory, config.hidden_size)
    seconds = time.perf_counter() - started
    reference = weakref.ref(model)
    del model
    return {
        "parameters": parameters,
        "weights_gib": gib(size),
        "build_and_save_s": round(seconds, 2),
        "memory_after_save": memory.freed(before, reference),
    }


def restrict_to_text_tokens(model, tokenizer) -> None:
    """Zero the output rows of ids the small tokenizer cannot spell as text (specials, unused ids).

    The vocabulary keeps its real size (same compute and memory); with those logits at 0 greedy
    decoding picks one of ~4,000 text tokens, so outputs decode to comparable text and never stop
    early on an end token: every request generates max_new_tokens.
    """
    import torch

    weight = model.get_output_embeddings().weight
    blocked = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    with torch.no_grad():
        weight[len(tokenizer) :] = 0
        for token_id in blocked:
            weight[token_id] = 0


def write_sentence_transformers_layout(directory: Path, dimension: int) -> None:
    """The sentence-transformers files of the bge-m3 repository: CLS pooling, then L2 normalisation."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (directory / "modules.json").write_text(json.dumps(modules, indent=2))
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8192, "do_lower_case": False}))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": dimension,
                "pooling_mode_cls_token": True,
                "pooling_mode_mean_tokens": False,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    (directory / "2_Normalize").mkdir(exist_ok=True)


# ---- generation ------------------------------------------------------------------------------
def llm_spec(shape: Shape, directory: Path, args, device: str, quantization: str | None):
    """The registry entry of ``shape`` pointed at the random model (greedy answers as in the study)."""
    from rag_pipeline.generate.registry import models_by_name

    spec = models_by_name()[shape.registry]
    if quantization and spec.quantization != quantization:
        raise CheckError(
            f"registry entry {shape.registry!r} has quantization {spec.quantization!r}, expected {quantization!r}"
        )
    changes = {"model": str(directory), "max_new_tokens": args.max_new_tokens, "batch_size": 1}
    if quantization is None:
        changes.update(quantization=None, dtype="bfloat16" if spec.dtype == "auto" else spec.dtype)
    if device == "cpu" and quantization is None:
        changes["dtype"] = "float32"  # bf16 is emulated on CPUs: slow, and not what a GPU computes
    return respec(spec, **changes)


def respec(spec, **changes):
    """A copy of a ModelSpec with ``changes``: its validated ``replace`` where it has one (pydantic),
    ``dataclasses.replace`` for the older dataclass."""
    if dataclasses.is_dataclass(spec):
        return dataclasses.replace(spec, **changes)
    return spec.replace(**changes)


def generation_phase(run: Run, shape: Shape, directory: Path, quantization: str | None = None) -> dict:
    """Load ``shape`` through the backend, measure one-at-a-time vs batched, close, check memory."""
    from generation import _timed  # benchmarks/generation.py: one timed backend.generate call

    from rag_pipeline.errors import ModelUnavailableError
    from rag_pipeline.generate.backends.transformers_backend import TransformersBackend

    args, device = run.args, run.device
    memory = Memory(device)
    spec = llm_spec(shape, directory, args, device, quantization)
    entry = {
        "registry_entry": shape.registry,
        "dtype": spec.dtype,
        "quantization": spec.quantization,
        "max_new_tokens": spec.max_new_tokens,
    }
    if quantization and device.startswith("cuda") and not package_version("bitsandbytes"):
        return {**entry, "status": "skipped", "reason": f"bitsandbytes is not installed ({WHEELS_HINT})"}
    memory.release()  # the baseline must not count a previous phase's garbage
    before = memory.allocated()
    memory.reset_peak()
    started = time.perf_counter()
    try:
        backend = TransformersBackend(spec)
    except ModelUnavailableError as exc:  # the registry's 8-bit path on a machine without CUDA
        return {**entry, "status": "skipped", "reason": str(exc)}
    entry["load_s"] = round(time.perf_counter() - started, 2)
    entry["weights_gib"] = gib(memory.allocated() - before) if memory.cuda else None
    entry["memory_footprint_gib"] = gib(backend.model.get_memory_footprint())
    entry["model_device"] = str(backend.model.device)
    reference = weakref.ref(backend.model)
    load_peak = memory.peak_gib()
    try:
        entry.update(measure_generation(backend, spec, args, memory, run.chunks, _timed, quantization))
    finally:
        peaks = [load_peak, entry.get("one_at_a_time", {}).get("peak_memory_gib")]
        peaks += [b["peak_memory_gib"] for b in entry.get("batched", [])]
        entry["peak_memory_gib"] = max((p for p in peaks if p is not None), default=None)
        backend.close()
        del backend
        entry["memory"] = memory.freed(before, reference)
    entry["status"] = "ok"
    return entry


def measure_generation(backend, spec, args, memory: Memory, chunks, timed, quantization) -> dict:
    from rag_pipeline.generate.backends.transformers_backend import TransformersBackend

    def variant(**changes):  # the same loaded model under other batch settings
        return TransformersBackend(respec(spec, **changes), model=backend.model, tokenizer=backend.tokenizer)

    requests = answer_requests_for(spec, args.prompts, chunks)
    single_count = min(args.single_prompts_8bit if quantization else args.single_prompts, len(requests))
    largest = max(args.batch_sizes)

    require_generated(timed(variant(max_new_tokens=2), requests[:1])[0])  # warm-up: kernels, allocator
    first = variant(max_new_tokens=1)
    ttft_single = [timed(first, [request])[1] for request in requests[:3]]
    first_batch = variant(max_new_tokens=1, batch_size=largest)
    ttft_batch = timed(first_batch, requests[:largest])[1]
    del first, first_batch

    memory.reset_peak()
    single, single_s = timed(variant(batch_size=1), requests[:single_count])
    require_generated(single)
    single_tokens = sum(r.output_tokens for r in single)
    one_at_a_time = {
        "requests": single_count,
        "output_tokens": single_tokens,
        "wall_s": round(single_s, 3),
        "tokens_per_s": round(single_tokens / single_s, 2),
        "peak_memory_gib": memory.peak_gib(),
    }
    batched, identical = [], {}
    all_full = all(r.output_tokens == spec.max_new_tokens for r in single)
    for size in args.batch_sizes:
        memory.reset_peak()
        results, seconds = timed(variant(batch_size=size), requests)
        require_generated(results)
        tokens = sum(r.output_tokens for r in results)
        same = sum(
            a.output == b.output and a.output_tokens == b.output_tokens for a, b in zip(single, results[:single_count])
        )
        identical[str(size)] = f"{same}/{single_count}"
        all_full = all_full and all(r.output_tokens == spec.max_new_tokens for r in results)
        tokens_per_s = tokens / seconds
        batched.append(
            {
                "batch_size": size,
                "requests": len(requests),
                "output_tokens": tokens,
                "wall_s": round(seconds, 3),
                "tokens_per_s": round(tokens_per_s, 2),
                "speedup_vs_one_at_a_time": round(tokens_per_s / one_at_a_time["tokens_per_s"], 2),
                "peak_memory_gib": memory.peak_gib(),
            }
        )
    prompt_tokens = [r.input_tokens for r in single]
    return {
        "prompt_tokens_mean": round(statistics.mean(prompt_tokens), 1),
        "prompt_tokens_max": max(prompt_tokens),
        "ttft_s": {
            "one_request_median": round(statistics.median(ttft_single), 4),
            "largest_batch": round(ttft_batch, 4),
            "largest_batch_requests": len(requests[:largest]),
        },
        "one_at_a_time": one_at_a_time,
        "batched": batched,
        "greedy_outputs_identical": identical,
        "outputs_identical": all(v.split("/")[0] == v.split("/")[1] for v in identical.values()),
        "all_outputs_full_length": all_full,
        "sample_output": single[0].output[:80],
    }


def require_generated(results) -> None:
    errors = [r.error for r in results if r.error]
    if errors:
        raise PhaseError(f"{len(errors)} of {len(results)} generations failed; first: {errors[0]}")
    if any(not r.output_tokens for r in results):
        raise PhaseError("a generation produced no token")


# ---- embedder and reranker -------------------------------------------------------------------
def flag_embedding_problem() -> str | None:
    """Why FlagEmbedding cannot be used here (None when it imports)."""
    if importlib.util.find_spec("FlagEmbedding") is None:
        return "FlagEmbedding is not installed"
    try:
        import FlagEmbedding  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - e.g. an import break under a newer transformers
        return f"FlagEmbedding fails to import ({type(exc).__name__}: {exc})"
    return None


def encoder_paths(choice: str) -> tuple[list[str], str | None]:
    """Which loader paths to measure, and a note when the pipeline's own kinds cannot run.

    ``flag``: FlagEmbedding (the pipeline's ``bge-m3`` embedder and ``flag`` reranker, as the
    notebook); ``sentence-transformers``: our ``sentence-transformers`` / ``cross-encoder`` kinds.
    """
    problem = flag_embedding_problem()
    if choice == "flag" and problem:
        raise CheckError(f"--encoders flag: {problem}")
    if choice in ("flag", "sentence-transformers"):
        return [choice], None
    if choice == "all":
        return (
            (["sentence-transformers"], f"{problem}: measured the sentence-transformers paths only")
            if problem
            else (["flag", "sentence-transformers"], None)
        )
    if problem:  # auto
        return ["sentence-transformers"], (
            f"{problem}: the bge-m3 shape runs through the sentence-transformers embedder (CLS pooling, "
            "bge-m3's own sentence-transformers layout) and the reranker shape through the cross-encoder "
            "reranker, instead of the pipeline's bge-m3 / flag kinds"
        )
    return ["flag"], None


def embedder_phase(run: Run, path: str, directory: Path, texts: list[str]) -> dict:
    """Chunks/s of ``load_embedder`` on the random bge-m3 shape; its memory freed after."""
    from rag_pipeline.index.embedders import clear_embedder_cache, load_embedder

    args = run.args
    memory = Memory(run.device)
    kind = "bge-m3" if path == "flag" else "sentence-transformers"
    config = {"kind": kind, "model": str(directory), "batch_size": args.embed_batch_size}
    memory.release()  # the baseline must not count a previous phase's garbage
    before = memory.allocated()
    memory.reset_peak()
    started = time.perf_counter()
    embedder = load_embedder(config)
    entry = {"kind": kind, "batch_size": args.embed_batch_size, "load_s": round(time.perf_counter() - started, 2)}
    reference = weakref.ref(embedder)
    try:
        embedder.embed_documents(texts[:4])  # warm-up
        started = time.perf_counter()
        vectors = embedder.embed_documents(texts)
        seconds = time.perf_counter() - started
        if vectors.shape != (len(texts), embedder.dim):
            raise PhaseError(f"embedder returned {vectors.shape}, expected {(len(texts), embedder.dim)}")
        entry.update(
            chunks=len(texts),
            chunk_chars_mean=round(statistics.mean(len(t) for t in texts), 1),
            dim=int(embedder.dim),
            wall_s=round(seconds, 3),
            chunks_per_s=round(len(texts) / seconds, 2),
            peak_memory_gib=memory.peak_gib(),
        )
        del vectors
    finally:
        del embedder
        clear_embedder_cache()
        entry["memory"] = memory.freed(before, reference)
    entry["status"] = "ok"
    return entry


def reranker_phase(run: Run, path: str, directory: Path, chunks: list[str]) -> dict:
    """Pairs/s of ``load_reranker`` on the random reranker shape, scored as retrieval does."""
    from rag_pipeline.index.rerankers import clear_reranker_cache, load_reranker

    args = run.args
    memory = Memory(run.device)
    kind = "flag" if path == "flag" else "cross-encoder"
    config = {"kind": kind, "model": str(directory), "max_length": 512, "batch_size": 16}
    study = [q["question"] for q in questions()]
    queries = [study[i % len(study)] for i in range(args.rerank_queries)]
    memory.release()  # the baseline must not count a previous phase's garbage
    before = memory.allocated()
    memory.reset_peak()
    started = time.perf_counter()
    reranker = load_reranker(config)
    entry = {
        "kind": kind,
        "max_length": config["max_length"],
        "batch_size": config["batch_size"],
        "load_s": round(time.perf_counter() - started, 2),
    }
    reference = weakref.ref(reranker)
    top_k = args.top_k
    try:
        reranker.score(queries[0], chunks[:top_k])  # warm-up
        started = time.perf_counter()
        for i, query in enumerate(queries):  # the pipeline: one question, its top_k candidates
            candidates = [chunks[(i + k) % len(chunks)] for k in range(top_k)]
            scores = reranker.score(query, candidates)
            if len(scores) != top_k:
                raise PhaseError(f"reranker returned {len(scores)} scores for {top_k} pairs")
        seconds = time.perf_counter() - started
        pairs = len(queries) * top_k
        entry.update(
            queries=len(queries),
            pairs=pairs,
            pairs_per_query=top_k,
            wall_s=round(seconds, 3),
            pairs_per_s=round(pairs / seconds, 2),
            peak_memory_gib=memory.peak_gib(),
        )
    finally:
        del reranker
        clear_reranker_cache()
        entry["memory"] = memory.freed(before, reference)
    entry["status"] = "ok"
    return entry


# ---- the run ---------------------------------------------------------------------------------
def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment(device: str) -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "packages": {
            name: package_version(name)
            for name in (
                "torch",
                "transformers",
                "tokenizers",
                "accelerate",
                "safetensors",
                "sentence-transformers",
                "bitsandbytes",
                "FlagEmbedding",
                "pydantic",
                "PyYAML",
            )
        },
        "cuda": torch.version.cuda,
    }
    if device.startswith("cuda"):
        properties = torch.cuda.get_device_properties(0)
        info["gpu"] = properties.name
        info["gpu_memory_gib"] = gib(properties.total_memory)
    return info


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (reports do not carry machine paths)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", "utf-8")
    temporary.replace(path)


def summarise(report: dict) -> None:
    """The target (batched bf16 8B ≥ 10× one-at-a-time) and the one-model-at-a-time verdict."""
    results = {}
    for entry in report["generation"]:
        if entry["status"] == "ok" and not entry.get("quantization") and entry.get("batched"):
            results[entry["name"]] = max(b["speedup_vs_one_at_a_time"] for b in entry["batched"])
    report["target"] = {
        "description": f"batched 8B bf16 generation at >= {TARGET_SPEEDUP:g}x the notebook's one-at-a-time tokens/s",
        "speedups": results,
        # A dry run's tiny models on a CPU say nothing about an 8B model on a GPU.
        "met": None if report["dry_run"] or not results else all(s >= TARGET_SPEEDUP for s in results.values()),
    }
    checks = [
        e["memory"]["freed"]
        for section in ("generation", "encoders")
        for e in report[section]
        if isinstance(e.get("memory"), dict)
    ] + [e["build"]["memory_after_save"]["freed"] for e in report["builds"] if "build" in e]
    report["memory_freed_between_models"] = bool(checks) and all(checks)
    report["status"] = (
        "failed"
        if any(e["status"] == "failed" for s in ("builds", "generation", "encoders") for e in report[s])
        else "ok"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for <timestamp>.json")
    parser.add_argument("--dry-run", action="store_true", help="tiny configurations (automatic without CUDA)")
    parser.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    parser.add_argument("--work-dir", type=Path, default=None, help="where random models are saved (default: temp)")
    parser.add_argument("--only", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--encoders", choices=["auto", "flag", "sentence-transformers", "all"], default="auto")
    parser.add_argument("--budget-s", type=float, default=480.0, help="skip phases that would start after this")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--prompts", type=int)
    parser.add_argument("--single-prompts", type=int)
    parser.add_argument("--single-prompts-8bit", type=int)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--embed-chunks", type=int)
    parser.add_argument("--embed-batch-size", type=int, default=32)  # the pipeline's default
    parser.add_argument("--rerank-queries", type=int)
    parser.add_argument("--top-k", type=int, default=10)  # retrieval top_k: pairs per question
    return parser.parse_args(argv)


# GPU figures (8B) / dry-run figures (tiny models, 2 CPU cores).
SIZES = {
    "max_new_tokens": (64, 8),
    "prompts": (32, 16),
    "single_prompts": (8, 4),
    "single_prompts_8bit": (4, 4),
    "embed_chunks": (2048, 64),
    "rerank_queries": (200, 8),
}
# Seconds a phase needs on the GPU at the least: it is skipped when fewer remain in --budget-s.
PHASE_MINIMUM_S = {"llama3-8b": 90, "llama3-8b-8bit": 90, "qwen3-8b": 90, "embedder": 20, "reranker": 20}


class Run:
    """One run of the check: the report being filled, the work directory, the time budget."""

    def __init__(self, args, shapes: dict, device: str, report: dict, out_file: Path):
        self.args, self.shapes, self.device = args, shapes, device
        self.report, self.out_file = report, out_file
        self.started = time.perf_counter()
        self.work = Path(tempfile.mkdtemp(prefix="gpu-check-", dir=args.work_dir))

    def due(self, phase: str) -> bool:
        """Whether to run ``phase`` now: asked for and, on a GPU, enough of --budget-s left."""
        if phase not in self.args.only:
            return False
        left = self.args.budget_s - (time.perf_counter() - self.started)
        if self.args.dry_run or left >= PHASE_MINIMUM_S[phase]:
            return True
        self.report["encoders" if phase in ("embedder", "reranker") else "generation"].append(
            {"name": phase, "status": "skipped", "reason": f"time budget: {left:.0f} s left of --budget-s"}
        )
        return False

    def phase(self, section: str, name: str, function, **extra) -> dict:
        """Run one step; a failure is recorded with its reason and the next steps still run."""
        log(f"{name}: start")
        started = time.perf_counter()
        try:
            entry = function()
        except (CheckError, PhaseError) as exc:
            entry = {"status": "failed", "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - keep the other measurements of a scarce GPU run
            entry = {
                "status": "failed",
                "reason": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=6)[-2000:],
            }
        entry = {"name": name, **extra, **entry, "phase_s": round(time.perf_counter() - started, 2)}
        self.report[section].append(entry)
        reason = f" ({entry['reason']})" if entry.get("reason") else ""
        log(f"{name}: {entry['status']} in {entry['phase_s']} s{reason}")
        write_report(self.report, self.out_file)  # a run cut short still leaves what it measured
        return entry

    def build(self, shape: Shape, dtype) -> Path | None:
        """Save a random ``shape`` to the work directory; None (recorded) when that failed."""
        directory = self.work / shape.name
        directory.mkdir()

        def build_and_save() -> dict:
            built = build_random_model(shape, self.shapes[shape.name], self.args, directory, self.device, dtype)
            return {"build": built, "status": "ok"}

        entry = self.phase(
            "builds", f"build {shape.name}", build_and_save, config_file=shown(self.args.config_dir / shape.config)
        )
        return directory if entry["status"] == "ok" else None

    def run(self) -> None:
        import torch

        bf16 = torch.float32 if self.device == "cpu" else torch.bfloat16
        self.chunks = corpus_chunks()
        if {"llama3-8b", "llama3-8b-8bit"} & set(self.args.only):
            directory = self.build(LLAMA3, bf16)  # one build serves the bf16 and the 8-bit phases
            for name, quantization in (("llama3-8b", None), ("llama3-8b-8bit", "8bit")):
                if directory and self.due(name):
                    measure = lambda q=quantization: generation_phase(self, LLAMA3, directory, q)
                    self.phase("generation", name, measure, shape=LLAMA3.config)
            self.remove(directory)
        if self.due("qwen3-8b") and (directory := self.build(QWEN3, bf16)):
            self.phase("generation", "qwen3-8b", lambda: generation_phase(self, QWEN3, directory), shape=QWEN3.config)
            self.remove(directory)
        texts = [text for paper in self.chunks.values() for text in paper]
        paths, self.report["encoder_note"] = encoder_paths(self.args.encoders)
        # bge-m3 and bge-reranker-v2-m3 publish fp32 weights; each loader picks its own dtype.
        if self.due("embedder") and (directory := self.build(BGE_M3, torch.float32)):
            documents = [texts[i % len(texts)] for i in range(self.args.embed_chunks)]
            for path in paths:
                measure = lambda p=path: embedder_phase(self, p, directory, documents)
                self.phase(
                    "encoders", f"embedder {BGE_M3.name} ({path})", measure, shape=BGE_M3.config, role="embedder"
                )
            self.remove(directory)
        if self.due("reranker") and (directory := self.build(RERANKER, torch.float32)):
            for path in paths:
                measure = lambda p=path: reranker_phase(self, p, directory, texts)
                self.phase(
                    "encoders", f"reranker {RERANKER.name} ({path})", measure, shape=RERANKER.config, role="reranker"
                )
            self.remove(directory)

    def remove(self, directory: Path | None) -> None:
        """Delete a saved model as soon as its phases are done (an 8B one is 16 GB of disk)."""
        if directory:
            shutil.rmtree(directory, ignore_errors=True)

    def finish(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.report["environment"]["imported_dagster"] = "dagster" in sys.modules
        self.report["environment"]["imported_chromadb"] = "chromadb" in sys.modules
        self.report["total_s"] = round(time.perf_counter() - self.started, 1)
        summarise(self.report)
        self.report["report_file"] = shown(self.out_file)
        write_report(self.report, self.out_file)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        shapes = check_inputs(args)
        import torch

        cuda = torch.cuda.is_available()
        reason = "--dry-run: tiny configurations" if args.dry_run else None
        if not cuda:
            reason = "no CUDA device: dry run with tiny configurations on the CPU"
        args.dry_run = args.dry_run or not cuda
        for name, (full, tiny) in SIZES.items():
            if getattr(args, name) is None:
                setattr(args, name, tiny if args.dry_run else full)
        import_project()
    except CheckError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    if reason:
        log(reason)
    if cuda and not package_version("bitsandbytes"):
        log(f"bitsandbytes is missing: the 8-bit phase will be skipped ({WHEELS_HINT})")
    device = "cuda" if cuda else "cpu"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "benchmark": "gpu_check",
        "schema_version": SCHEMA_VERSION,
        "created_at": stamp,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "dry_run": args.dry_run,
        "dry_run_reason": reason,
        "environment": environment(device),
        "settings": {
            **{name: getattr(args, name) for name in SIZES},
            "batch_sizes": args.batch_sizes,
            "embed_batch_size": args.embed_batch_size,
            "top_k": args.top_k,
            "phases": args.only,
            "encoders": args.encoders,
            "budget_s": args.budget_s,
            "freed_tolerance_bytes": FREED_TOLERANCE_BYTES,
        },
        "builds": [],
        "generation": [],
        "encoders": [],
    }
    run = Run(args, shapes, device, report, args.out / f"{stamp}{'-dry-run' if args.dry_run else ''}.json")
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one JSON object only
            run.run()
    finally:
        run.finish()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 1 if report["status"] == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
