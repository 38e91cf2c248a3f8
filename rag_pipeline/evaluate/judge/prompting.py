"""What every judge mode shares in talking to the judge: the system prompt and the blocks of a
user prompt (Russian, the study is Russian-first), the retry, and reading JSON and labels out of
an answer."""

from __future__ import annotations

import json
import re

Messages = list[dict]

LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_OUTPUT_CHARS = 4000
# Cyrillic letters that look like Latin labels (a judge writing in Russian may use them).
HOMOGLYPHS = str.maketrans({"А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "К": "K", "М": "M",
                            "О": "O", "Р": "P", "Т": "T", "Х": "X"})

SYSTEM_PROMPT = (
    "Ты — беспристрастный эксперт, который оценивает ответы языковых моделей на русском языке. "
    "Имена моделей скрыты, порядок ответов случайный и ничего не говорит об их качестве. "
    "Оценивай фактическую точность относительно эталона, полноту, отсутствие выдумок и ясность. "
    "Не предпочитай ответ только за его длину."
)


def clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + " [...обрезано]"


def task_header(task: str, context: str) -> str:
    if task == "summary":
        return f"Задача: краткое изложение (суммаризация) научной статьи.\nСтатья: {context or '(название не указано)'}"
    return f"Задача: ответ на вопрос по научной статье.\nВопрос: {context or '(вопрос не указан)'}"


def outputs_block(outputs: list[str], labels: str) -> str:
    return "\n\n".join(f"Ответ {label}:\n<<<\n{clip(text)}\n>>>" for label, text in zip(labels, outputs))


def judge_messages(task: str, context: str, reference: str, outputs: list[str], labels: str,
                   instruction: str) -> Messages:
    """System prompt, then the task, the reference, the labelled outputs and the mode's instruction."""
    user = (
        f"{task_header(task, context)}\n\nЭталон:\n<<<\n{clip(reference)}\n>>>\n\n"
        f"{outputs_block(outputs, labels)}\n\n{instruction}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def retry_messages(messages: Messages, raw: str, required_format: str) -> Messages:
    """The conversation extended by the unparseable answer and a reminder of the format."""
    return [
        *messages,
        {"role": "assistant", "content": raw},
        {"role": "user", "content": f"Не удалось разобрать ответ. Ответь строго одним JSON без пояснений: {required_format}"},
    ]


def json_candidates(text: str) -> list:
    """JSON values found in ``text``: the whole text, fenced blocks, then every {...} / [...] span."""
    found = []
    spans = [text.strip()]
    spans += re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    spans += re.findall(r"\{[^{}]*\}", text, flags=re.DOTALL)
    spans += re.findall(r"\[[^\[\]]*\]", text, flags=re.DOTALL)
    for span in spans:
        try:
            found.append(json.loads(span))
        except (json.JSONDecodeError, TypeError):
            continue
    return found


def as_label(value, labels: str) -> str | None:
    """A label from a JSON value: "B", "Ответ B", "[B]", a Cyrillic look-alike, or a 1-based number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer() and 1 <= int(value) <= len(labels):
        return labels[int(value) - 1]
    if not isinstance(value, str):
        return None
    text = value.strip().translate(HOMOGLYPHS)
    if text.isdigit() and 1 <= int(text) <= len(labels):
        return labels[int(text) - 1]
    matches = set(re.findall(rf"(?<![A-Za-z])([{labels}])(?![A-Za-z])", text))
    return matches.pop() if len(matches) == 1 else None
