"""``tokline pricing show [MODEL]`` and ``tokline pricing update [--force]``."""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request

from tokline import config as config_mod
from tokline.accounting.pricing import derive_table, updated_prices_file
from tokline.commands.common import price_book
from tokline.errors import ToklineError

TIMEOUT_S = 10


def _show(model: str | None) -> int:
    cfg = config_mod.load()
    book = price_book(cfg)
    source = "updated" if os.path.exists(updated_prices_file()) else "bundled"
    if model is None:
        print(f"{len(book.entries)} models priced ({source} table"
              + (f", {len(cfg.price_overrides)} overrides from config" if cfg.price_overrides
                 else "") + ")")
        return 0
    price = book.lookup(model)
    if price is None:
        print(f"{model}: no price (tokens are counted, cost is shown as unpriced)")
        return 1
    key = book._match(model)
    origin = "config override" if key in {k.lower() for k in cfg.price_overrides} else source
    print(f"{model} -> {key} ({origin}), USD per million tokens:")
    rows = [("input", price.input), ("output", price.output),
            ("cache write 5m", price.cache_write_5m), ("cache write 1h", price.cache_write_1h),
            ("cache read", price.cache_read)]
    for name, value in rows:
        print(f"  {name:<15} {value * 1e6:10.4f}")
    if price.tier is not None:
        print(f"  above {price.tier_threshold:,} prompt tokens: input {price.tier[0] * 1e6:.4f},"
              f" output {price.tier[1] * 1e6:.4f} (whole request)")
    if price.fast_multiplier != 1.0:
        print(f"  fast mode: x{price.fast_multiplier:g}")
    return 0


def _update(force: bool) -> int:
    cfg = config_mod.load()
    target = updated_prices_file()
    try:
        with open(target, encoding="utf-8") as fh:
            fetched_at = float(json.load(fh).get("fetched_at", 0))
    except (OSError, ValueError):
        fetched_at = 0.0
    age_h = (time.time() - fetched_at) / 3600
    if not force and fetched_at and age_h < cfg.pricing_ttl_hours:
        print(f"prices are {age_h:.1f} h old (ttl {cfg.pricing_ttl_hours:g} h); "
              "use --force to fetch anyway")
        return 0
    request = urllib.request.Request(cfg.pricing_url, headers={"User-Agent": "tokline"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            payload = json.loads(response.read())
        table = derive_table(payload)
        if not table:
            raise ValueError("no model with token prices in it")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        kept = "the last fetched table" if fetched_at else "the bundled table"
        raise ToklineError(f"price update from {cfg.pricing_url} failed ({exc}); "
                           f"keeping {kept}") from None
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"source": cfg.pricing_url, "fetched_at": time.time(), "models": table}, fh)
    os.replace(tmp, target)
    print(f"updated prices for {len(table)} models from {cfg.pricing_url}")
    return 0


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline pricing")
    sub = parser.add_subparsers(dest="action", required=True)
    show = sub.add_parser("show", help="which price a model gets")
    show.add_argument("model", nargs="?")
    update = sub.add_parser("update", help="fetch LiteLLM's price list")
    update.add_argument("--force", action="store_true", help="ignore the ttl")
    args = parser.parse_args(argv)
    if args.action == "show":
        return _show(args.model)
    return _update(args.force)
