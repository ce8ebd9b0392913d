"""The bundled price table covers the models today's assistants send by default."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED

from tokline.accounting.pricing import derive_table, price_book

SNAPSHOT = SHARED / "pricing" / "litellm-prices-2026-07-24.json"
# the families the current clients send by default (Claude Code, Codex, Gemini CLI), and
# those Kimi, Pi, OpenCode and the like send (Kimi, GLM, Grok; LiteLLM has no Qwen price)
FAMILIES = ("claude-opus-4", "claude-sonnet-4", "claude-haiku-4", "gpt-5", "gemini-2.5-",
            "gemini-3", "kimi-", "glm-", "grok-")


def test_the_bundled_table_is_derived_from_the_shared_snapshot() -> None:
    """Every model of the snapshot that has token prices and belongs to a family the
    clients send is in the bundled table, at the snapshot's prices."""
    litellm = json.loads(SNAPSHOT.read_text("utf-8"))
    derived = derive_table(litellm)
    wanted = {name for name in derived if name.startswith(FAMILIES)}
    assert wanted
    book = price_book()
    missing = sorted(name for name in wanted if book.lookup(name) is None)
    assert missing == []


@pytest.mark.parametrize("model", ["gemini-3-pro-image-preview", "gemini-3-pro-preview",
                                   "gemini-3.1-flash-image-preview", "gemini-3-flash-preview"])
def test_gemini_3_models_are_priced(model: str) -> None:
    """Gemini 3 image models (an image mode in LiteLLM) bill their text tokens too."""
    price = price_book().lookup(model)
    assert price is not None
    assert price.cost(1_000_000, 0, 0, 0, 0, 0, False) > 0


@pytest.mark.parametrize(("logged", "key"), [
    # Kimi Code's aliases, OpenRouter's vendor slugs (Pi and OpenCode log them bare),
    # LiteLLM's provider prefixes
    ("moonshot-ai/kimi-k2.6", "kimi-k2.6"), ("moonshotai/kimi-k2.5", "kimi-k2.5"),
    ("moonshot/kimi-k2.6", "kimi-k2.6"), ("z-ai/glm-5.1", "glm-5.1"), ("zai/glm-5.1", "glm-5.1"),
    ("x-ai/grok-4.3", "grok-4.3"), ("xai/grok-4.5", "grok-4.5"),
    ("google/gemini-3.1-pro-preview", "gemini-3.1-pro-preview"),
    # no price in the table: unpriced, never a neighbour's price
    ("moonshot-ai/kimi-k2.7-code", None), ("kimi-for-coding", None),
    ("qwen3-coder-plus", None), ("qwen/qwen3-coder", None), ("coder-model", None),
])
def test_names_the_newer_clients_log(logged: str, key: str | None) -> None:
    book = price_book()
    assert book._match(logged) == key
    assert (book.cost_of(logged, 1000, 100, 0, 0, 0, 0, 0) is None) == (key is None)
