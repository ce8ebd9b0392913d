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
                # A client that tried to leave the machine through the proxy we set.
                with stand.lock:
                    stand.seen.append(("CONNECT", self.path))
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
                 headers: dict[str, str] | None = None) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        for name, data in events:
            h.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            h.wfile.flush()
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
    """POST /v1/responses, streamed; GET /v1/models answered; other paths 404."""

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
        reply = self.next_reply()
        model = reply.model or str(body.get("model") or "gpt-5")
        resp_id = _next_id("resp_")
        usage = dict(reply.usage)
        self.record(Served(h.path, True, resp_id, "", model, usage, body))
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
