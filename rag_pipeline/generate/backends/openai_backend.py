"""Generation through an OpenAI-compatible chat-completions server (vLLM, TGI, Ollama, OpenAI).

The API key is read from the environment variable the spec names (``api_key_env``) and is only ever
placed in the Authorization header: never in rows, metadata, logs or error messages. Transient
failures (HTTP 429 and 5xx, timeouts, connection errors) are retried with exponential backoff; after
the last attempt, or on any other failure (4xx, malformed JSON, missing fields), the item becomes a
row with the reason in ``error``. Requests run concurrently, ``batch_size`` at a time.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from tqdm.auto import tqdm

from rag_pipeline.generate.backends.base import (
    Backend,
    BatchCallback,
    GenerationResult,
    cut_at_stop_strings,
    label_probabilities,
    split_thinking,
)
from rag_pipeline.generate.prompts import continues_prefill, plain_render
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.generate.types import GenerationRequest


class MissingApiKeyError(RuntimeError):
    """The environment variable that should hold a model's API key is not set."""


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection error)."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (_Transient, httpx.TimeoutException, httpx.TransportError))


class OpenAIBackend(Backend):
    """Chat completions over HTTP with retries; one result per request, in order."""

    def __init__(
        self, spec: ModelSpec, backoff_initial_s: float = 1.0, backoff_max_s: float = 30.0
    ):
        super().__init__(spec)
        headers = {"Content-Type": "application/json"}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise MissingApiKeyError(
                    f"model {spec.name!r}: environment variable {spec.api_key_env} is not set; "
                    f"export {spec.api_key_env}=<your key> (the key is read only from the environment)"
                )
            headers["Authorization"] = f"Bearer {key}"
        self._secret = key if spec.api_key_env else None
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._client = httpx.Client(
            base_url=spec.base_url.rstrip("/"), headers=headers, timeout=spec.timeout_s
        )

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        spec = self.spec
        decoding = spec.decoding_for(request.task)
        payload: dict[str, Any] = {
            "model": spec.model,
            "messages": request.messages,
            "max_tokens": min(request.max_new_tokens or spec.max_new_tokens, spec.max_new_tokens),
        }
        if decoding.get("do_sample"):
            for key in ("temperature", "top_p"):
                if decoding.get(key) is not None:
                    payload[key] = decoding[key]
            # Not in OpenAI's API, accepted by vLLM/TGI-style servers; sent only when configured.
            for key in ("top_k", "min_p"):
                if decoding.get(key) is not None:
                    payload[key] = decoding[key]
        else:
            payload["temperature"] = 0.0
        if decoding.get("repetition_penalty") is not None:
            payload["repetition_penalty"] = decoding["repetition_penalty"]
        if decoding.get("seed") is not None:
            payload["seed"] = decoding["seed"]
        if spec.stop_strings:
            payload["stop"] = list(spec.stop_strings)
        template_kwargs = {}
        if spec.enable_thinking is not None:
            template_kwargs["enable_thinking"] = spec.enable_thinking
        if continues_prefill(spec, request.messages):
            payload["continue_final_message"] = True
            payload["add_generation_prompt"] = False
        if template_kwargs:
            payload["chat_template_kwargs"] = template_kwargs
        if request.want_logprobs:
            payload["logprobs"] = True
            payload["top_logprobs"] = 5
        return payload

    def _redact(self, text: str) -> str:
        """Error text can echo the request (some servers quote the Authorization header): drop the key."""
        return text.replace(self._secret, "***") if self._secret else text

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post("/chat/completions", json=payload)
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise RuntimeError(f"response is not JSON: {response.text[:200]!r}") from exc

    def _post_timed(self, payload: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """One attempt and its duration: latency is the successful attempt's, without retry back-off."""
        started = time.perf_counter()
        body = self._post(payload)
        return body, time.perf_counter() - started

    def _one(self, request: GenerationRequest) -> GenerationResult:
        payload = self._payload(request)
        prompt = plain_render(request.messages, continues_prefill(self.spec, request.messages))
        retrying = Retrying(
            stop=stop_after_attempt(self.spec.max_retries + 1),
            wait=wait_exponential(multiplier=self._backoff[0], max=self._backoff[1]),
            retry=retry_if_exception(_is_transient),
            reraise=False,
        )
        try:
            body, latency = retrying(self._post_timed, payload)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            return GenerationResult(
                error=self._redact(
                    f"{self.spec.base_url} failed after {self.spec.max_retries + 1} attempts: "
                    f"{type(last).__name__}: {last}"
                ),
                prompt=prompt,
            )
        except Exception as exc:  # noqa: BLE001 - every other failure is recorded in the row
            return GenerationResult(
                error=self._redact(f"{self.spec.base_url}: {type(exc).__name__}: {exc}"), prompt=prompt
            )
        try:
            message = body["choices"][0]["message"]
            content = message["content"]
            if not isinstance(content, str):
                raise TypeError(f"message.content is {type(content).__name__}")
        except (KeyError, IndexError, TypeError) as exc:
            return GenerationResult(
                error=self._redact(f"{self.spec.base_url}: malformed chat completion (missing {exc}): {str(body)[:200]}"),
                prompt=prompt,
            )
        answer, thinking = split_thinking(cut_at_stop_strings(content, self.spec.stop_strings))
        reasoning = message.get("reasoning_content") or ""
        usage = body.get("usage") or {}
        logprobs = (body["choices"][0].get("logprobs") or {}).get("content") if request.want_logprobs else None
        return GenerationResult(
            label_probabilities=label_probabilities(logprobs) if logprobs else None,
            output=answer,
            thinking="\n\n".join(t for t in (reasoning.strip(), thinking) if t),
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            latency_s=latency,
            prompt=prompt,
        )

    def generate(
        self, requests: list[GenerationRequest], progress: bool = True, on_batch: BatchCallback | None = None
    ) -> list[GenerationResult]:
        """Send the requests ``batch_size`` at a time; results in request order, each reported as it arrives."""
        results = []
        pool = ThreadPoolExecutor(max_workers=self.spec.batch_size)
        try:
            answers = pool.map(self._one, requests)
            for index, result in enumerate(
                tqdm(answers, total=len(requests), disable=not progress, desc=f"generate {self.spec.name}", unit="item")
            ):
                results.append(result)
                if on_batch is not None:
                    on_batch([index], [result])
        finally:
            # An interrupt must not wait for the queued requests: they are dropped (the ones in flight end alone).
            pool.shutdown(wait=False, cancel_futures=True)
        return results

    def close(self) -> None:
        self._client.close()
