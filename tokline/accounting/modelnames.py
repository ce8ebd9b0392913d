"""Matching a logged model name to a price-table key (formats.md §6.2): provider and
region prefixes, ``[1m]``/``-v1:0``/``@date`` decorations, dated snapshots.

Only needed when a name is not a table key as it stands; kept apart from
tokline/accounting/pricing.py because ``re`` costs a prompt's refresh several milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Provider prefixes: LiteLLM's and the clouds'; OpenRouter's vendor slugs, which Pi and
# OpenCode log bare (``moonshotai/kimi-k2.6``, ``z-ai/glm-5.1``, ``x-ai/grok-4.3``,
# ``qwen/qwen3-coder``); Kimi Code's model aliases (``moonshot-ai/kimi-k2.6``).
_PREFIXES = re.compile(
    r"^(?:(?:us|eu|apac|global|jp|au)\.)?(?:anthropic[./]|bedrock/|vertex_ai/|openai/|azure/"
    r"|openrouter/(?:[a-z0-9-]+/)?|google/|gemini/|models/"
    r"|moonshot(?:ai|-ai)?/|kimi-code/|z-ai/|zai/|zhipu(?:ai)?/|x-ai/|xai/|qwen/|dashscope/)+"
)
_DATE = re.compile(r"-\d{8}$")
_VERSION_TAIL = re.compile(r"^[-.]\d")
_DATED_TAIL = re.compile(r"^-\d{8}(?:$|-)")
_BRACKETS = re.compile(r"\[[^\]]*\]$")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")


def normalize(model: str) -> str:
    """Lower case, no provider/region prefix, no ``[1m]``/``-v1:0``/``@date`` decorations."""
    name = _BRACKETS.sub("", model.strip().lower())
    name = _PREFIXES.sub("", name)
    name = _BEDROCK_VERSION.sub("", name)
    return name.replace("@", "-")


class Matcher:
    """Table keys by their normalized names, with and without a date suffix."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.by_normal: dict[str, str] = {}
        ordered = sorted(keys, key=len)
        for key in ordered:
            self.by_normal.setdefault(normalize(key), key)
        for key in ordered:  # "claude-opus-4" for claude-opus-4-20250514
            self.by_normal.setdefault(_DATE.sub("", normalize(key)), key)

    def match(self, model: str) -> str | None:
        name = normalize(model)
        for candidate in (name, _DATE.sub("", name), name.replace(".", "-")):
            if candidate in self.by_normal:
                return self.by_normal[candidate]
        # Boundary-aware prefix: "claude-opus-4-5-foo" may use "claude-opus-4-5", but
        # "claude-opus-4-5" must never fall back to "claude-opus-4" (never degrade a version).
        best: str | None = None
        best_length = -1
        for normal, key in self.by_normal.items():
            if not name.startswith(normal) or len(normal) == len(name):
                continue
            rest = name[len(normal):]
            if rest[0].isalnum():
                continue
            if _VERSION_TAIL.match(rest) and not _DATED_TAIL.match(rest):
                continue
            if len(normal) > best_length:
                best, best_length = key, len(normalize(key))
        return best
