"""Prices per token, model-name matching and per-request cost (formats.md §6).

The bundled table ``tokline/data/prices.json`` is derived from LiteLLM's
``model_prices_and_context_window.json`` by ``derive_table`` (run
``python -m tokline.accounting.pricing DERIVE litellm.json`` to regenerate it).  ``tokline
pricing update`` stores a newer derived table in the data dir; config overrides
per model win over both.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Mapping

from tokline.engine.records import F_FAST, SYNTHETIC
from tokline.prompt import lightjson

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tokline.accounting.modelnames import Matcher

WEB_SEARCH_USD = 0.01  # Anthropic bills $10 per 1,000 searches

# Fields of one compact price entry, USD per token.
BASE_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
    "cache_read": "cache_read_input_token_cost",
}
TIERS = (200_000, 272_000, 128_000)

class Price:
    """USD per token of one model."""

    __slots__ = ("cache_read", "cache_write_1h", "cache_write_5m", "fast_multiplier", "input",
                 "output", "tier", "tier_threshold")

    def __init__(self, input: float, output: float, cache_write_5m: float,
                 cache_write_1h: float, cache_read: float, tier_threshold: int = 0,
                 tier: tuple[float, float, float, float, float] | None = None,
                 fast_multiplier: float = 1.0) -> None:
        self.input = input
        self.output = output
        self.cache_write_5m = cache_write_5m
        self.cache_write_1h = cache_write_1h
        self.cache_read = cache_read
        self.tier_threshold = tier_threshold  # prompt tokens above which ``tier`` applies
        self.tier = tier
        self.fast_multiplier = fast_multiplier

    def cost(self, input: int, output: int, cache_5m: int, cache_1h: int, cache_read: int,
             web_search: int = 0, fast: bool = False) -> float:
        """One request's cost.  Above the tier threshold every category is billed at the
        tier rate, as Anthropic (200k) and OpenAI (272k) bill it (§6.3)."""
        rates: tuple[float, float, float, float, float] = (
            self.input, self.output, self.cache_write_5m, self.cache_write_1h, self.cache_read)
        if self.tier is not None and input + cache_5m + cache_1h + cache_read > self.tier_threshold:
            rates = self.tier
        total = (input * rates[0] + output * rates[1] + cache_5m * rates[2]
                 + cache_1h * rates[3] + cache_read * rates[4])
        if fast:
            total *= self.fast_multiplier
        return total + web_search * WEB_SEARCH_USD


def _num(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def derive_entry(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The compact form of one LiteLLM entry, or None when it has no token prices."""
    inp = _num(entry, "input_cost_per_token")
    out = _num(entry, "output_cost_per_token")
    if inp is None or out is None:
        return None
    compact: dict[str, Any] = {"input": inp, "output": out}
    for name, key in BASE_FIELDS.items():
        value = _num(entry, key)
        if value is not None:
            compact[name] = value
    for threshold in TIERS:
        suffix = f"_above_{threshold // 1000}k_tokens"
        tier_in = _num(entry, "input_cost_per_token" + suffix)
        if tier_in is None:
            continue
        tier = {"threshold": threshold, "input": tier_in}
        for name, key in (("output", "output_cost_per_token"),
                          ("cache_write_5m", "cache_creation_input_token_cost"),
                          ("cache_write_1h", "cache_creation_input_token_cost_above_1hr"),
                          ("cache_read", "cache_read_input_token_cost")):
            value = _num(entry, key + suffix)
            if value is not None:
                tier[name] = value
        compact["tier"] = tier
        break
    specific = entry.get("provider_specific_entry")
    if isinstance(specific, Mapping):
        fast = _num(specific, "fast")
        if fast:
            compact["fast"] = fast
    return compact


def derive_table(litellm: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for name, entry in sorted(litellm.items()):
        if name == "sample_spec" or not isinstance(entry, Mapping):
            continue
        # Image models answer in text too and bill those tokens (Gemini CLI can send
        # gemini-3-pro-image-preview): any mode with token prices counts, except the
        # kinds no assistant's log records.
        if entry.get("mode") in ("embedding", "audio_transcription", "audio_speech",
                                 "moderation", "rerank", "video_generation"):
            continue
        compact = derive_entry(entry)
        if compact is not None:
            table[name.lower()] = compact
    return table


def to_price(compact: Mapping[str, Any]) -> Price:
    inp = float(compact["input"])
    out = float(compact["output"])
    cw5 = float(compact.get("cache_write_5m", inp * 1.25))
    cw1 = float(compact.get("cache_write_1h", inp * 2))
    cr = float(compact.get("cache_read", inp * 0.1))
    tier = compact.get("tier")
    tier_rates = None
    threshold = 0
    if isinstance(tier, Mapping):
        t_in = float(tier["input"])
        scale = t_in / inp if inp else 1.0
        tier_rates = (
            t_in,
            float(tier.get("output", out * scale)),
            float(tier.get("cache_write_5m", cw5 * scale)),
            float(tier.get("cache_write_1h", cw1 * scale)),
            float(tier.get("cache_read", cr * scale)),
        )
        threshold = int(tier["threshold"])
    return Price(inp, out, cw5, cw1, cr, threshold, tier_rates, float(compact.get("fast", 1.0)))


class PriceBook:
    """Looks models up in a derived table; remembers answers (a report asks thousands of times)."""

    def __init__(self, table: Mapping[str, Mapping[str, Any]],
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 table_text: str | None = None) -> None:
        self.entries: dict[str, Mapping[str, Any]] = {k.lower(): v for k, v in table.items()}
        for name, entry in (overrides or {}).items():
            self.entries[name.lower()] = entry
        self._matcher: Matcher | None = None  # built on the first name not in the table
        self._memo: dict[str, Price | None] = {}
        self._fingerprint: str | None = None
        # The file the table came from: its checksum stands for the table's, which would
        # take milliseconds to serialise on every refresh.
        self._table_text = table_text
        self._overrides = overrides or {}

    def cost_of(self, model: str, inp: int, out: int, cache_5m: int, cache_1h: int,
                cache_read: int, web_search: int, flags: int) -> float | None:
        """One stored row's computed cost; None when its model has no price."""
        price = self.lookup(model)
        if price is None:
            return 0.0 if model == SYNTHETIC else None
        return price.cost(inp, out, cache_5m, cache_1h, cache_read, web_search,
                          bool(flags & F_FAST))

    def rates(self, model: str) -> tuple[float | int, ...] | float | None:
        """What ``cost_of`` computes ``model``'s rows' costs from, for the rows the compiled
        Claude reader builds in C (ext/_claude_c.pyx row_cost, held to cost_of by
        tests/test_writer.py): None (no price), a fixed cost (0.0, a synthetic message), or
        the price's terms: input, output, 5-minute and 1-hour cache write and cache read
        rates, whether a tier applies (0 or 1), its threshold, the tier's five rates, the
        fast multiplier and the price of a web search."""
        price = self.lookup(model)
        if price is None:
            return 0.0 if model == SYNTHETIC else None
        tier = price.tier if price.tier is not None else (0.0, 0.0, 0.0, 0.0, 0.0)
        return (price.input, price.output, price.cache_write_5m, price.cache_write_1h,
                price.cache_read, int(price.tier is not None), price.tier_threshold, *tier,
                price.fast_multiplier, WEB_SEARCH_USD)

    def fingerprint(self) -> str:
        """Changes whenever any price does: stored costs are then computed again."""
        if self._fingerprint is None:
            if self._table_text is not None:
                blob = (self._table_text + "\0" + lightjson.dumps(_sorted_keys(self._overrides)))
            else:
                blob = lightjson.dumps(_sorted_keys(self.entries))
            crc = zlib.crc32(blob.encode("utf-8", "surrogatepass"))
            self._fingerprint = f"{len(self.entries)}-{crc:08x}"
        return self._fingerprint

    def lookup(self, model: str) -> Price | None:
        if model in self._memo:
            return self._memo[model]
        key = self._match(model)
        price = to_price(self.entries[key]) if key is not None else None
        self._memo[model] = price
        return price

    def _match(self, model: str) -> str | None:
        if not model or model == SYNTHETIC:
            return None
        lowered = model.lower()
        if lowered in self.entries:
            return lowered
        if self._matcher is None:
            from tokline.accounting.modelnames import Matcher  # noqa: PLC0415 - imports re

            self._matcher = Matcher(self.entries)
        return self._matcher.match(model)


def _sorted_keys(value: Any) -> Any:
    """``value`` with every mapping's keys in order: one spelling per table."""
    if isinstance(value, Mapping):
        return {str(k): _sorted_keys(value[k]) for k in sorted(value)}
    return value


def _bundled_file() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "prices.json")


def _read_table(path: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """A derived table file's text and its models."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    models: dict[str, dict[str, Any]] = lightjson.loads(text)["models"]
    return text, models


def bundled_table() -> dict[str, dict[str, Any]]:
    return _read_table(_bundled_file())[1]


def updated_prices_file(env: Mapping[str, str] = os.environ) -> str:
    """Where `tokline pricing update` keeps the table it fetched."""
    from tokline.prompt.statefiles import data_dir  # noqa: PLC0415

    return os.path.join(data_dir(env), "prices.json")


def price_book(overrides: Mapping[str, Mapping[str, float]] | None = None) -> PriceBook:
    """The fetched table when there is one, else the bundled one; config overrides win."""
    try:
        text, table = _read_table(updated_prices_file())
    except (OSError, ValueError, KeyError, TypeError):
        # No update fetched yet, or an unreadable one: the bundled table stands.
        text, table = _read_table(_bundled_file())
    return PriceBook(table, overrides, text)


def main(argv: list[str]) -> int:
    """``python -m tokline.accounting.pricing DERIVE SRC [DEST]``: regenerate the bundled table."""
    if len(argv) < 2 or argv[0] != "DERIVE":
        print("usage: python -m tokline.accounting.pricing DERIVE litellm.json [prices.json]",
              file=sys.stderr)
        return 2
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    source = Path(argv[1])
    dest = Path(argv[2]) if len(argv) > 2 else Path(__file__).parent.parent / "data" / "prices.json"
    table = derive_table(json.loads(source.read_text("utf-8")))
    dest.write_text(json.dumps({"source": source.name, "models": table}, indent=0,
                               sort_keys=True) + "\n", "utf-8")
    print(f"wrote {len(table)} models to {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
