"""The OpenAI-compatible HTTP backend against FakeOpenAIServer, a local test fake of the chat
completions protocol (no real API is reachable here)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag_pipeline.cache import ContentCache
from rag_pipeline.generate.backends import load_backend
from rag_pipeline.generate.backends.openai_backend import MissingApiKeyError, OpenAIBackend
from rag_pipeline.generate.registry import spec_from_entry
from rag_pipeline.generate.runner import run_generation
from rag_pipeline.generate.types import GenerationRequest

SECRET = "sk-test-0123456789abcdef"


def completion(content: str, prompt_tokens: int = 11, completion_tokens: int = 5) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


class FakeOpenAIServer:
    """A test fake: serves POST /v1/chat/completions on 127.0.0.1 from a script of replies.

    Each reply is ``(status, body)`` where body is a dict (sent as JSON) or a str (sent raw), or
    ``("sleep", seconds)`` to stall past the client's timeout, or ``("echo", seconds)`` to answer
    with the last message after a varying delay, or ``("fn", body -> completion)``. The last reply repeats. Every request
    (headers and JSON body) is recorded in ``received``.
    """

    def __init__(self, replies):
        self.replies = list(replies)
        self.received: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.received.append(
                    {"path": self.path, "headers": dict(self.headers), "json": body}
                )
                index = min(len(fake.received) - 1, len(fake.replies) - 1)
                status, payload = fake.replies[index]
                if status == "sleep":
                    time.sleep(payload)
                    status, payload = 200, completion("too late")
                elif status == "fn":  # the reply is computed from the request body
                    status, payload = 200, payload(body)
                elif status == "echo":  # answer with the last message, after a varying delay
                    time.sleep(payload * (len(fake.received) % 3))
                    status, payload = 200, completion("ответ на " + body["messages"][-1]["content"])
                data = (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()


def _spec(server, **overrides):
    entry = {
        "name": "served-qwen3",
        "backend": "openai",
        "model": "Qwen/Qwen3-8B",
        "base_url": server.base_url,
        "api_key_env": "RAG_TEST_LLM_KEY",
        "decoding": {"do_sample": False},
        "max_new_tokens": 64,
        "enable_thinking": False,
        "timeout_s": 2.0,
        "max_retries": 3,
        "batch_size": 2,
    }
    entry.update(overrides)
    return spec_from_entry(entry, "test")


def _requests(n=1):
    return [
        GenerationRequest(
            task="answer",
            paper_id="p",
            item_id=f"p:q{i}",
            messages=[
                {"role": "system", "content": "Отвечай по-русски."},
                {"role": "user", "content": f"Вопрос {i}?"},
            ],
        )
        for i in range(n)
    ]


def _backend(spec):
    return OpenAIBackend(spec, backoff_initial_s=0.01, backoff_max_s=0.05)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("RAG_TEST_LLM_KEY", SECRET)


def test_success_sends_the_protocol_and_splits_thinking(tmp_path):
    with FakeOpenAIServer(
        [(200, completion("<think>вспоминаю статью</think>\n\nОптимизатор Adam."))]
    ) as server:
        spec = _spec(server)
        rows = run_generation(
            spec, _requests(), cache=ContentCache(tmp_path), backend=_backend(spec), progress=False
        )
    row = rows[0]
    assert (row.output, row.thinking, row.input_tokens, row.output_tokens) == (
        "Оптимизатор Adam.",
        "вспоминаю статью",
        11,
        5,
    )
    assert row.error == "" and row.latency_s is not None
    sent = server.received[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert sent["json"]["model"] == "Qwen/Qwen3-8B" and sent["json"]["max_tokens"] == 64
    assert sent["json"]["temperature"] == 0.0  # greedy
    assert sent["json"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert sent["json"]["messages"][1]["content"] == "Вопрос 0?"
    # The key is used only in the header: never in the row or the cache.
    assert SECRET not in json.dumps(row.to_dict(), ensure_ascii=False)
    assert all(SECRET not in path.read_text(encoding="utf-8") for path in tmp_path.rglob("*.json"))


def test_retries_on_429_and_5xx_then_succeeds():
    replies = [
        (429, {"error": "rate limited"}),
        (503, {"error": "overloaded"}),
        (500, "oops"),
        (200, completion("Adam")),
    ]
    with FakeOpenAIServer(replies) as server:
        result = _backend(_spec(server)).generate(_requests(), progress=False)[0]
    assert result.output == "Adam" and result.error == ""
    assert len(server.received) == 4


def test_last_retry_failure_is_recorded_in_the_row():
    with FakeOpenAIServer([(502, {"error": "bad gateway"})]) as server:
        result = _backend(_spec(server, max_retries=2)).generate(_requests(), progress=False)[0]
    assert result.output == ""
    assert "failed after 3 attempts" in result.error and "HTTP 502" in result.error
    assert len(server.received) == 3


@pytest.mark.parametrize("status", [401, 503])
def test_a_server_echoing_the_key_never_puts_it_in_the_row(status):
    echo = {"error": {"message": f"invalid credentials: Bearer {SECRET}"}}
    with FakeOpenAIServer([(status, echo)]) as server:
        result = _backend(_spec(server, max_retries=1)).generate(_requests(), progress=False)[0]
    assert f"HTTP {status}" in result.error
    assert SECRET not in result.error and "***" in result.error


def test_timeouts_are_retried_then_recorded():
    with FakeOpenAIServer([("sleep", 1.0)]) as server:
        result = _backend(_spec(server, timeout_s=0.2, max_retries=1)).generate(
            _requests(), progress=False
        )[0]
    assert "failed after 2 attempts" in result.error and "Timeout" in result.error
    assert len(server.received) == 2


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ((200, "<html>not json</html>"), "response is not JSON"),
        ((200, {"choices": []}), "malformed chat completion"),
        ((200, {"choices": [{"message": {"role": "assistant"}}]}), "malformed chat completion"),
        ((400, {"error": "bad request"}), "HTTP 400"),
    ],
)
def test_bad_replies_are_recorded_without_retrying(reply, expected):
    with FakeOpenAIServer([reply]) as server:
        results = _backend(_spec(server)).generate(_requests(3), progress=False)
    assert all(expected in r.error and r.output == "" for r in results)
    assert len(server.received) == 3  # one attempt per request: not transient


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("RAG_TEST_LLM_KEY")
    missing = "environment variable RAG_TEST_LLM_KEY is not set"
    with (
        FakeOpenAIServer([(200, completion("x"))]) as server,
        pytest.raises(MissingApiKeyError, match=missing) as excinfo,
    ):
        load_backend(_spec(server))
    assert "served-qwen3" in str(excinfo.value)


def test_concurrent_requests_keep_request_order():
    with FakeOpenAIServer([("echo", 0.05)]) as server:
        results = _backend(_spec(server, batch_size=4)).generate(_requests(6), progress=False)
    assert [r.output for r in results] == [f"ответ на Вопрос {i}?" for i in range(6)]
    assert len(server.received) == 6


def test_thinking_without_an_answer_is_a_failed_row_and_retried_next_run(tmp_path):
    cache = ContentCache(tmp_path)
    with FakeOpenAIServer(
        [(200, completion("<think>рассуждение, оборванное лимитом токенов"))]
    ) as server:
        spec = _spec(server)
        first = run_generation(
            spec, _requests(), cache=cache, backend=_backend(spec), progress=False
        )[0]
        second = run_generation(
            spec, _requests(), cache=cache, backend=_backend(spec), progress=False
        )[0]
    assert first.output == "" and first.thinking == "рассуждение, оборванное лимитом токенов"
    assert "only <think> reasoning" in first.error
    assert len(cache) == 0 and second.cache_hit is False and len(server.received) == 2
