"""Prompt templates per task and prompt family, and their rendering.

Families ``tlite``, ``yandexgpt`` and ``qwen3`` reproduce the message layouts of the reference
notebook for those models (same instructions, same turn structure), so the pipeline's outputs are
comparable to the study's. ``default`` is this project's own layout for any other model: the
instruction in the system turn, the material and the request in one user turn.

Bump :data:`PROMPT_VERSION` whenever a template below changes: it is stored in every generation row
and the rendered prompt is part of the generation cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag_pipeline.hashing import content_hash

PROMPT_VERSION = "1"

# ---- the notebook's instructions (Russian), used verbatim by the notebook families -----------
_NOTEBOOK_SUMMARY_INSTRUCTION = (
    "Ты — помощник по научным статьям. Сформулируй краткое и точное резюме по тексту ниже."
)
_RUSSIAN_ONLY = " Отвечай строго на русском языке"
_NOTEBOOK_ANSWER_INSTRUCTION = (
    "Ты — помощник по научным статьям. "
    "Твоя задача — дать короткий, точный и однозначный ответ на вопрос, "
    "используя только приведённый контекст. "
    "Нельзя продолжать диалог, задавать встречные вопросы или повторяться. Отвечай строго на русском языке"
)

# ---- the project's own default family -----------------------------------------------------
_DEFAULT_SYSTEM = (
    "Ты — внимательный ассистент исследователя. Ты читаешь научные статьи и отвечаешь только "
    "на русском языке, опираясь только на данный текст."
)
# Small models follow the request best when it comes last, after the material.
_DEFAULT_SUMMARY_REQUEST = "Кратко перескажи эту статью на русском языке в 3–5 предложениях."
_DEFAULT_ANSWER_REQUEST = (
    "Ответь на вопрос полным предложением на русском языке, опираясь только на фрагменты статьи выше. "
    "Если во фрагментах нет ответа, так и скажи."
)


@dataclass(frozen=True)
class PromptFamily:
    """The instructions of one family; the layouts live in the message builders below."""

    summary_instruction: str
    answer_instruction: str


FAMILIES: dict[str, PromptFamily] = {
    # T-lite's summary instruction had no "answer in Russian" sentence in the notebook.
    "tlite": PromptFamily(_NOTEBOOK_SUMMARY_INSTRUCTION, _NOTEBOOK_ANSWER_INSTRUCTION),
    "yandexgpt": PromptFamily(
        _NOTEBOOK_SUMMARY_INSTRUCTION + _RUSSIAN_ONLY, _NOTEBOOK_ANSWER_INSTRUCTION
    ),
    "qwen3": PromptFamily(
        _NOTEBOOK_SUMMARY_INSTRUCTION + _RUSSIAN_ONLY, _NOTEBOOK_ANSWER_INSTRUCTION
    ),
    "default": PromptFamily(_DEFAULT_SUMMARY_REQUEST, _DEFAULT_ANSWER_REQUEST),
}

# The notebook's Qwen3 cells ended the conversation with this assistant turn and then asked for a
# new assistant turn (apply_chat_template with add_generation_prompt=True): a closed turn, not a
# prefill. Kept as it was so the prompt equals what the study's Qwen3 saw.
_QWEN3_SUMMARY_ASSISTANT_TURN = "Краткое резюме:"


def _family(spec: Any) -> PromptFamily:
    try:
        return FAMILIES[spec.prompt_family]
    except KeyError:
        raise ValueError(
            f"model {spec.name!r}: unknown prompt_family {spec.prompt_family!r}; known: {sorted(FAMILIES)}"
        ) from None


def _finish(spec: Any, task: str, messages: list[dict]) -> list[dict]:
    """Apply the model's constraints: no system role → user turns; the task's prefill appended."""
    if not spec.system_role:
        messages = [{**m, "role": "user"} if m["role"] == "system" else m for m in messages]
    prefill = spec.prefill_for(task)
    if prefill:
        messages = messages + [{"role": "assistant", "content": prefill}]
    return messages


def paper_text_for_summary(abstract: str, conclusion: str) -> str:
    """The notebook's summary input: the abstract and the conclusion under English headings."""
    return f"Abstract:\n{abstract}\n\nConclusion:\n{conclusion}"


def join_context(chunks: list[str]) -> str:
    """The answer context: the kept chunks in rank order, separated by blank lines (as the notebook)."""
    return "\n\n".join(chunk.strip() for chunk in chunks)


def summary_messages(spec: Any, abstract: str, conclusion: str) -> list[dict]:
    """Chat messages asking ``spec``'s model for a Russian summary of a paper."""
    family = _family(spec)
    text = paper_text_for_summary(abstract, conclusion)
    if spec.prompt_family == "default":
        messages = [
            {"role": "system", "content": _DEFAULT_SYSTEM},
            {
                "role": "user",
                "content": f"Аннотация:\n{abstract}\n\nЗаключение:\n{conclusion}\n\n{family.summary_instruction}",
            },
        ]
    else:
        messages = [
            {"role": "system", "content": family.summary_instruction},
            {"role": "user", "content": text},
        ]
        if spec.prompt_family == "qwen3":
            messages.append({"role": "assistant", "content": _QWEN3_SUMMARY_ASSISTANT_TURN})
    return _finish(spec, "summary", messages)


def answer_messages(spec: Any, question: str, chunks: list[str]) -> list[dict]:
    """Chat messages asking ``spec``'s model to answer ``question`` from the retrieved ``chunks``."""
    family = _family(spec)
    context = join_context(chunks)
    if spec.prompt_family == "default":
        messages = [
            {"role": "system", "content": _DEFAULT_SYSTEM},
            {
                "role": "user",
                "content": f"Фрагменты статьи:\n{context}\n\nВопрос: {question}\n\n{family.answer_instruction}",
            },
        ]
    elif spec.prompt_family == "qwen3":
        # The notebook gave Qwen3 the context as a (closed) assistant turn.
        messages = [
            {"role": "system", "content": family.answer_instruction},
            {"role": "user", "content": f"Вопрос:\n{question}"},
            {"role": "assistant", "content": f"Контекст:\n{context}"},
        ]
    else:
        # T-lite: the context as a second system turn; YandexGPT: the same as user turns.
        messages = [
            {"role": "system", "content": family.answer_instruction},
            {"role": "user", "content": f"Вопрос:\n{question}"},
            {"role": "system", "content": f"Контекст:\n{context}"},
        ]
    return _finish(spec, "answer", messages)


def continues_prefill(spec: Any, messages: list[dict]) -> bool:
    """Whether generation continues the last (assistant prefill) message instead of opening a turn."""
    prefills = spec.assistant_prefill
    prefills = (
        set(prefills.values()) if isinstance(prefills, dict) else {prefills} if prefills else set()
    )
    return bool(
        messages and messages[-1]["role"] == "assistant" and messages[-1]["content"] in prefills
    )


def plain_render(messages: list[dict], continue_final: bool = False) -> str:
    """A stable, model-independent text form of a conversation (used where no tokenizer is loaded)."""
    parts = [f"<|{m['role']}|>\n{m['content']}" for m in messages]
    text = "\n".join(parts)
    if continue_final:
        return text
    return text + "\n<|assistant|>\n"


def render_prompt(spec: Any, messages: list[dict], tokenizer: Any = None) -> str:
    """The prompt text a model sees: the tokenizer's chat template when given, else :func:`plain_render`.

    A trailing assistant prefill is continued (``continue_final_message``); otherwise a new assistant
    turn is opened. ``enable_thinking`` is passed to the template when the spec sets it (Qwen3).
    """
    continue_final = continues_prefill(spec, messages)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return plain_render(messages, continue_final)
    kwargs: dict[str, Any] = {}
    if spec.enable_thinking is not None:
        kwargs["enable_thinking"] = spec.enable_thinking
    return tokenizer.apply_chat_template(
        messages,
        tokenize=False,
        add_generation_prompt=not continue_final,
        continue_final_message=continue_final,
        **kwargs,
    )


def prompt_hash(messages: list[dict]) -> str:
    """Content hash of a conversation (independent of the model's chat template)."""
    return content_hash({"prompt_version": PROMPT_VERSION, "messages": messages})
