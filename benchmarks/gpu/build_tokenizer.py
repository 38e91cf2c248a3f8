"""Build benchmarks/gpu/tokenizer.json: a small byte-level BPE for the GPU check's random models.

The check needs a tokenizer it can carry to a machine without a model hub. Real models'
tokenizers are megabytes; this one has 4,096 entries trained on the project's own Russian texts
(the reference study, the notebook's instructions, the demo corpus), so prompts tokenize to a
realistic length (about 2 characters per token on Russian) and any byte sequence round-trips.
The special tokens of the Llama-3 and Qwen3 chat formats and of XLM-R come first, so one file
serves every model of the check (``benchmarks/gpu_check.py`` picks the ones a family uses).

    .venv/bin/python benchmarks/gpu/build_tokenizer.py      # rewrites tokenizer.json (deterministic)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).resolve().parent / "tokenizer.json"
VOCAB_SIZE = 4096
# XLM-R's four first (its config expects <pad> at id 1), then the chat formats' markers.
SPECIAL_TOKENS = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "<mask>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
]
# Qwen3 emits these as ordinary (not special) added tokens: decoding keeps them.
ADDED_TOKENS = ["<think>", "</think>"]


def corpus() -> list[str]:
    """The training texts: everything Russian the project ships, plus the demo corpus (English)."""
    import yaml

    from rag_pipeline.generate.prompts import _DEFAULT_SYSTEM, FAMILIES

    data = ROOT / "data"
    texts: list[str] = [_DEFAULT_SYSTEM]
    for family in FAMILIES.values():
        texts += [family.summary_instruction, family.answer_instruction]
    for paper in json.loads((data / "reference_study" / "summaries.json").read_text("utf-8")):
        texts.append(paper["reference_summary"])
        texts += [model.get("summary") or "" for model in paper["models"].values()]
    for question in json.loads((data / "reference_study" / "questions.json").read_text("utf-8")):
        texts += [question["question"], question["reference_answer"]]
        texts += [answer.get("text") or "" for answer in question["answers"].values()]
    for source in sorted((data / "demo_corpus" / "sources").glob("*.yaml")):
        paper = yaml.safe_load(source.read_text("utf-8"))
        texts.append(paper.get("abstract") or "")
        for section in paper.get("sections") or []:
            texts += [p for p in section.get("paragraphs") or [] if isinstance(p, str)]
    return [text for text in texts if text]


def build() -> dict:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    tokenizer.add_tokens(ADDED_TOKENS)
    return json.loads(tokenizer.to_str())


def main() -> None:
    spec = build()
    OUT.write_text(json.dumps(spec, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    print(f"{OUT}: {len(spec['model']['vocab'])} entries, {OUT.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
