"""Tiny randomly initialised BERT models built offline inside the tests.

No package ships a cross-encoder, so the reranker code paths load one of these by local path:
a WordLevel tokenizer trained on the test's own sentences (every word known, so different texts
get different scores) and a 2-layer BERT with a one-logit classification head.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tokenizer(sentences: Iterable[str]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    # A BERT tokenizer class, as a real cross-encoder ships: FlagReranker builds each pair with the
    # tokenizer's own special-token methods, which the generic PreTrainedTokenizerFast does not define.
    from transformers import BertTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(
        list(sentences), trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=256,
    )


def _config(vocab_size: int, **extra):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=256,
        **extra,
    )


def build_tiny_cross_encoder(directory: Path, sentences: Iterable[str], seed: int = 0) -> Path:
    """Save a random one-logit BERT sequence classifier and its tokenizer to ``directory``."""
    import torch
    from transformers import BertForSequenceClassification

    tokenizer = _tokenizer(sentences)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(_config(len(tokenizer), num_labels=1))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def build_tiny_encoder(directory: Path, sentences: Iterable[str], seed: int = 0) -> Path:
    """Save a random BERT encoder (no head) and its tokenizer to ``directory``."""
    import torch
    from transformers import BertModel

    tokenizer = _tokenizer(sentences)
    torch.manual_seed(seed)
    BertModel(_config(len(tokenizer))).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
