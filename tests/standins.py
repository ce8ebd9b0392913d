"""Loopback stand-ins for the Anthropic Messages API and the OpenAI Responses API.

The real Claude Code and Codex CLIs are pointed at these (127.0.0.1, port 0), so they
write their usual logs while every token count they see was chosen by a test.  Each
server records what it served, per request, and every path it was asked for.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

_ids = itertools.count(1)
_S = TypeVar("_S", bound="StandIn")


def _next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):024d}"


@dataclass
class Reply:
    """One scripted model response: its content blocks (Anthropic shape) and usage."""

    usage: dict[str, Any]
    text: str = "hi"
    tool: dict[str, Any] | None = None  # {"name": ..., "input": {...}} (Anthropic) / shell call
    model: str | None = None


@dataclass
class Served:
    path: str
    stream: bool
    message_id: str
    request_id: str
    model: str
    usage: dict[str, Any]
    body: dict[str, Any] = field(repr=False, default_factory=dict)
    side: bool = False  # a client's side call (warmup, helper model), not the scripted loop


class StandIn:
    """Common part: a threaded loopback server, a script of replies, a record of requests."""

    def __init__(self, default: Reply) -> None:
        self.default = default
        self.script: list[Reply] = []
        self.served: list[Served] = []
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request
        self.unknown: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        stand = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Encoding") == "zstd":
                    return {}
                try:
                    parsed = json.loads(raw or b"{}")
                except ValueError:
                    return {}
                return parsed if isinstance(parsed, dict) else {}

            def do_GET(self) -> None:
                with stand.lock:
                    stand.seen.append(("GET", self.path))
                stand.handle(self, "GET", {})

            def do_POST(self) -> None:
                body = self._body()
                with stand.lock:
                    stand.seen.append(("POST", self.path))
                stand.handle(self, "POST", body)

            def do_CONNECT(self) -> None:
                with stand.lock:
                    stand.seen.append(("CONNECT", self.path))
                if self.path in (f"127.0.0.1:{stand.port}", f"localhost:{stand.port}"):
                    # A client whose proxy agent ignores NO_PROXY (Gemini CLI 0.34's
                    # undici ProxyAgent) tunnels even to the stand-in: the tunnel is this
                    # connection, whose next requests are then served as usual.
                    self.send_response(200, "Connection Established")
                    self.end_headers()
                    self.close_connection = False  # whatever its Connection header said
                    return
                # A client that tried to leave the machine through the proxy we set.
                with stand.lock:
                    stand.unknown.append(("CONNECT", self.path))
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.close_connection = True

            def do_HEAD(self) -> None:
                with stand.lock:
                    stand.seen.append(("HEAD", self.path))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self: _S) -> _S:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_reply(self) -> Reply:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def record(self, served: Served) -> None:
        with self.lock:
            self.served.append(served)

    def handle(self, h: BaseHTTPRequestHandler, method: str, body: dict[str, Any]) -> None:
        raise NotImplementedError

    # helpers for handlers

    @staticmethod
    def send_json(h: BaseHTTPRequestHandler, status: int, obj: object,
                  headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def send_sse(h: BaseHTTPRequestHandler, events: list[tuple[str, dict[str, Any]]],
                 headers: dict[str, str] | None = None, done: bool = False) -> None:
        """Server-sent events; an empty name sends a bare ``data:`` event (Gemini's and
        chat completions' streams have no event names); ``done`` ends the stream with
        chat completions' ``data: [DONE]``."""
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        for name, data in events:
            head = f"event: {name}\n" if name else ""
            h.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
            h.wfile.flush()
        if done:
            h.wfile.write(b"data: [DONE]\n\n")
        h.close_connection = True

    def not_found(self, h: BaseHTTPRequestHandler, method: str) -> None:
        with self.lock:
            self.unknown.append((method, h.path))
        self.send_json(h, 404, {"type": "error", "error": {"type": "not_found_error",
                                                          "message": "stand-in: unknown path"}})


def anthropic_usage(inp: int, out: int, read: int = 0, write_5m: int = 0, write_1h: int = 0,
                    write_total: int | None = None) -> dict[str, Any]:
    """A Messages API usage object; ``write_total`` overrides the split's sum."""
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": write_5m + write_1h if write_total is None else write_total,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m,
                           "ephemeral_1h_input_tokens": write_1h},
        "output_tokens": out,
        "service_tier": "standard",
    }


def _is_warmup(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    if len(messages) != 1 or not isinstance(messages[0], dict):
        return False
    content = messages[0].get("content")
    if isinstance(content, list):
        content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content).strip() == "Warmup"


class AnthropicStandIn(StandIn):
    """POST /v1/messages (streamed SSE or not); count_tokens answered; other paths 404."""

    main_model: str | None = None  # requests for other models are side calls

    def handle(self, h: BaseHTTPRequestHandler, method: str, body: dict[str, Any]) -> None:
        path = h.path.split("?", 1)[0]
        if method == "POST" and path == "/v1/messages/count_tokens":
            self.send_json(h, 200, {"input_tokens": 10})
            return
        if method == "POST" and path == "/v1/messages":
            self.messages(h, body)
            return
        self.not_found(h, method)

    def messages(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        # Claude Code 2.0.x warms its subagents up at start ("Warmup" prompts, racing the
        # real request) and asks a small model about Bash output: such side calls get the
        # default reply, so the script goes to the conversation's own requests.
        side = _is_warmup(body) or (self.main_model is not None
                                    and body.get("model") != self.main_model)
        reply = self.default if side else self.next_reply()
        model = reply.model or str(body.get("model") or "claude-sonnet-4-5-20250929")
        msg_id = _next_id("msg_01")
        req_id = _next_id("req_01")
        usage = dict(reply.usage)
        stream = bool(body.get("stream"))
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
        if reply.tool is not None:
            blocks.append({"type": "tool_use", "id": _next_id("toolu_01"),
                           "name": reply.tool["name"], "input": reply.tool["input"]})
        stop = "tool_use" if reply.tool is not None else "end_turn"
        self.record(Served(h.path, stream, msg_id, req_id, model, usage, body, side))
        headers = {"request-id": req_id}
        if not stream:
            self.send_json(h, 200, {"id": msg_id, "type": "message", "role": "assistant",
                                    "model": model, "content": blocks, "stop_reason": stop,
                                    "stop_sequence": None, "usage": usage}, headers)
            return
        start_usage = dict(usage, output_tokens=1)
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": start_usage}}),
        ]
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                events += [
                    ("content_block_start", {"type": "content_block_start", "index": i,
                                             "content_block": {"type": "text", "text": ""}}),
                    ("content_block_delta", {"type": "content_block_delta", "index": i,
                                             "delta": {"type": "text_delta",
                                                       "text": block["text"]}}),
                ]
            else:
                events += [
                    ("content_block_start", {"type": "content_block_start", "index": i,
                                             "content_block": dict(block, input={})}),
                    ("content_block_delta", {"type": "content_block_delta", "index": i,
                                             "delta": {"type": "input_json_delta",
                                                       "partial_json": json.dumps(
                                                           block["input"])}}),
                ]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events += [
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self.send_sse(h, events, headers)


def openai_usage(inp: int, out: int, cached: int = 0, reasoning: int = 0,
                 cache_write: int | None = None) -> dict[str, Any]:
    """A Responses API usage object (cached is part of input, reasoning part of output;
    ``cache_write`` adds ``input_tokens_details.cache_write_tokens``)."""
    details: dict[str, int] = {"cached_tokens": cached}
    if cache_write is not None:
        details["cache_write_tokens"] = cache_write
    return {
        "input_tokens": inp,
        "input_tokens_details": details,
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


class ResponsesStandIn(StandIn):
    """POST /v1/responses, streamed; GET /v1/models answered; other paths 404.  When
    ``main_model`` is set, requests for another model are side calls (a title from a
    small model) and get the default reply."""

    main_model: str | None = None

    def handle(self, h: BaseHTTPRequestHandler, method: str, body: dict[str, Any]) -> None:
        path = h.path.split("?", 1)[0]
        if method == "POST" and path.endswith("/responses"):
            self.responses(h, body)
            return
        if method == "GET" and path.endswith("/models"):
            self.send_json(h, 200, {"object": "list", "data": [], "models": []})
            return
        self.not_found(h, method)

    def responses(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        side = self.main_model is not None and body.get("model") != self.main_model
        reply = self.default if side else self.next_reply()
        model = reply.model or str(body.get("model") or "gpt-5")
        resp_id = _next_id("resp_")
        usage = dict(reply.usage)
        self.record(Served(h.path, True, resp_id, "", model, usage, body, side))
        msg_id = _next_id("msg_")
        item = {"type": "message", "id": msg_id, "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}]}
        base = {"id": resp_id, "object": "response", "model": model, "output": []}
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"type": "response.created",
                                  "response": dict(base, status="in_progress")}),
            ("response.output_item.added", {"type": "response.output_item.added",
                                            "output_index": 0,
                                            "item": dict(item, content=[],
                                                         status="in_progress")}),
            ("response.output_text.delta", {"type": "response.output_text.delta",
                                            "item_id": msg_id, "output_index": 0,
                                            "content_index": 0, "delta": reply.text}),
            ("response.output_item.done", {"type": "response.output_item.done",
                                           "output_index": 0, "item": item}),
            ("response.completed", {"type": "response.completed",
                                    "response": dict(base, status="completed", output=[item],
                                                     usage=usage)}),
        ]
        self.send_sse(h, events)


def gemini_usage(prompt: int, candidates: int, cached: int = 0, thoughts: int = 0,
                 tool: int = 0) -> dict[str, Any]:
    """A ``GenerateContentResponseUsageMetadata``: the prompt count includes the cached
    part; thoughts and tool-use prompt tokens are separate, and all four add to the total."""
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                             "totalTokenCount": prompt + candidates + thoughts + tool,
                             "promptTokensDetails": [{"modality": "TEXT",
                                                      "tokenCount": prompt}]}
    if cached:
        usage["cachedContentTokenCount"] = cached
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if tool:
        usage["toolUsePromptTokenCount"] = tool
    return usage


class GeminiStandIn(StandIn):
    """The Gemini API's ``models/<model>:streamGenerateContent`` (SSE, ``alt=sse``) and
    ``:generateContent``; ``:countTokens`` answered; other paths 404.

    A streamed answer comes in two chunks, as the real API sends them: the text with a
    usage that has only the prompt count so far, then the finish with the full usage.
    Non-streamed calls are the CLI's helpers (routing, next-speaker checks), side calls.
    """

    def handle(self, h: BaseHTTPRequestHandler, method: str, body: dict[str, Any]) -> None:
        path = h.path.split("?", 1)[0]
        model, _, verb = path.rpartition("/")[2].partition(":")
        if method == "POST" and "/models/" in path:
            if verb == "streamGenerateContent":
                self.generate(h, body, model, stream=True)
                return
            if verb == "generateContent":
                self.generate(h, body, model, stream=False)
                return
            if verb == "countTokens":
                self.send_json(h, 200, {"totalTokens": 10})
                return
        self.not_found(h, method)

    def not_found(self, h: BaseHTTPRequestHandler, method: str) -> None:
        with self.lock:
            self.unknown.append((method, h.path))
        self.send_json(h, 404, {"error": {"code": 404, "status": "NOT_FOUND",
                                          "message": "stand-in: unknown path"}})

    def generate(self, h: BaseHTTPRequestHandler, body: dict[str, Any], model: str,
                 stream: bool) -> None:
        side = not stream
        reply = self.default if side else self.next_reply()
        model = reply.model or model
        resp_id = _next_id("gresp")
        usage = dict(reply.usage)
        self.record(Served(h.path, stream, resp_id, "", model, usage, body, side))
        parts: list[dict[str, Any]] = []
        if usage.get("thoughtsTokenCount"):
            parts.append({"text": "**Thinking**\n\nabout it", "thought": True})
        parts.append({"text": reply.text})
        if reply.tool is not None:
            parts.append({"functionCall": {"name": reply.tool["name"],
                                           "args": reply.tool["input"]}})
        final = {"candidates": [{"content": {"role": "model", "parts": parts[-1:]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": usage, "modelVersion": model, "responseId": resp_id}
        if not stream:
            whole = dict(final, candidates=[{"content": {"role": "model", "parts": parts},
                                             "finishReason": "STOP", "index": 0}])
            self.send_json(h, 200, whole)
            return
        first = {"candidates": [{"content": {"role": "model", "parts": parts[:-1]},
                                 "index": 0}],
                 "usageMetadata": {"promptTokenCount": usage.get("promptTokenCount", 0),
                                   "totalTokenCount": usage.get("promptTokenCount", 0)},
                 "modelVersion": model, "responseId": resp_id}
        self.send_sse(h, [("", first), ("", final)] if parts[:-1] else [("", final)])


def chat_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0,
               cache_write: int | None = None) -> dict[str, Any]:
    """A chat completions usage object: cached is part of the prompt, reasoning part of
    the completion (OpenAI's shape; ``cache_write`` adds ``prompt_tokens_details.
    cache_write_tokens``, which some gateways report)."""
    prompt_details: dict[str, int] = {"cached_tokens": cached}
    if cache_write is not None:
        prompt_details["cache_write_tokens"] = cache_write
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


class ChatCompletionsStandIn(StandIn):
    """POST /v1/chat/completions (streamed with a final usage chunk, or not); GET /v1/models
    answered; other paths 404.  Requests for a model other than ``main_model`` are side
    calls (titles, summaries) and get the default reply."""

    main_model: str | None = None

    def handle(self, h: BaseHTTPRequestHandler, method: str, body: dict[str, Any]) -> None:
        path = h.path.split("?", 1)[0]
        if method == "POST" and path.endswith("/chat/completions"):
            self.completions(h, body)
            return
        if method == "GET" and path.endswith("/models"):
            models = [{"id": self.main_model, "object": "model", "owned_by": "stand-in"}] \
                if self.main_model else []
            self.send_json(h, 200, {"object": "list", "data": models})
            return
        self.not_found(h, method)

    def completions(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        side = self.main_model is not None and body.get("model") != self.main_model
        reply = self.default if side else self.next_reply()
        model = reply.model or str(body.get("model") or "gpt-4.1")
        chat_id = _next_id("chatcmpl-")
        usage = dict(reply.usage)
        stream = bool(body.get("stream"))
        self.record(Served(h.path, stream, chat_id, "", model, usage, body, side))
        calls = []
        if reply.tool is not None:
            calls.append({"index": 0, "id": _next_id("call_"), "type": "function",
                          "function": {"name": reply.tool["name"],
                                       "arguments": json.dumps(reply.tool["input"])}})
        finish = "tool_calls" if calls else "stop"
        base = {"id": chat_id, "created": 1_700_000_000, "model": model}
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": reply.text}
            if calls:
                message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"}
                                         for c in calls]
            self.send_json(h, 200, dict(base, object="chat.completion", usage=usage,
                                        choices=[{"index": 0, "message": message,
                                                  "finish_reason": finish}]))
            return
        chunk = dict(base, object="chat.completion.chunk")
        events: list[tuple[str, dict[str, Any]]] = [
            ("", dict(chunk, choices=[{"index": 0, "delta": {"role": "assistant",
                                                              "content": reply.text},
                                       "finish_reason": None}])),
        ]
        if calls:
            events.append(("", dict(chunk, choices=[{"index": 0, "delta": {"tool_calls": calls},
                                                     "finish_reason": None}])))
        events += [
            ("", dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])),
            # stream_options.include_usage: the usage comes alone, after the finish.
            ("", dict(chunk, choices=[], usage=usage)),
        ]
        self.send_sse(h, events, done=True)
