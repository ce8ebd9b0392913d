"""``config.toml``: every setting has a default; a bad value is a one-line error naming its key.

Prices in ``[pricing.overrides."MODEL"]`` are USD per million tokens, as price lists
show them: ``input``, ``output``, ``cache_write_5m``, ``cache_write_1h``, ``cache_read``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from tokline.accounting import costmode
from tokline.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
COST_MODES = costmode.MODES
# 5-hour block limits in input+output tokens (community estimates, formats.md §7.2).
PLAN_BLOCK_TOKENS = {"pro": 19_000, "max5": 88_000, "max20": 220_000}
# Remote quota providers and the shortest cache time each tolerates (remote_apis.md §0.4).
REMOTE_MIN_TTL_S = {"claude": 300.0, "copilot": 300.0, "codex": 60.0, "openrouter": 60.0,
                    "anthropic-admin": 60.0, "openai-admin": 60.0, "cursor": 120.0}
# [tray] show: today's spend, or the binding quota window's percentage (tokline tray)
TRAY_SHOW = ("cost", "quota")
DEFAULT_PRICING_URL = (
    "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
)


class Config:
    """Settings with their defaults (a plain class: dataclasses costs 8 ms to import on the
    background refresh's path)."""

    timezone: str = ""  # IANA zone; empty means the system zone
    week_start: int = 0  # 0 = Monday
    cost_mode: str = "auto"
    block_hours: int = 5
    pricing_url: str = DEFAULT_PRICING_URL
    pricing_ttl_hours: float = 24.0
    price_overrides: Mapping[str, Mapping[str, float]]
    template: str = "full"  # a preset name or a template (tokline/prompt/template.py)
    refresh_interval_s: float = 10.0  # a status older than this starts a background refresh
    stale_after_s: float = 3600.0  # older than this, the status line says it is stale
    budget_daily_usd: float | None = None
    budget_weekly_usd: float | None = None
    budget_monthly_usd: float | None = None
    plan: str | None = None  # pro | max5 | max20 | custom: a 5-hour block token limit
    block_tokens: int | None = None
    warn_percent: float = 80.0
    critical_percent: float = 95.0
    notify: bool = True
    source_file: str | None = None
    # per provider: base_url, login_url (Copilot's device flow), ttl_s, enabled
    remote: Mapping[str, Mapping[str, Any]]
    # [sync] (tokline/sync): this device's name (default: the host name), the target (a
    # directory or ssh://…), what leaves about project paths, what surfaces count, and
    # how often the background refresh syncs
    sync_device: str | None = None
    sync_target: str | None = None
    sync_projects: str = "name"
    sync_scope: str = "all"
    sync_interval_s: float = 60.0
    tray_show: str = "cost"  # [tray] show: what the tray icon's text is (TRAY_SHOW)

    def __init__(self, **values: Any) -> None:
        self.price_overrides = {}
        self.remote = {}
        for name, value in values.items():
            if not hasattr(type(self), name) and name not in ("price_overrides", "remote"):
                raise TypeError(f"unknown setting {name}")
            setattr(self, name, value)


def _load_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415 - only commands that read config pay for it
    else:
        import tomli as tomllib  # noqa: PLC0415
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _want(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"config {where}{key}: expected {names}, got {value!r}")
    return value


def parse(data: Mapping[str, Any], source: str | None = None) -> Config:
    known = {"timezone", "week_start", "cost_mode", "blocks", "pricing", "status", "budget",
             "thresholds", "remote", "sync", "tray"}
    for key in data:
        if key not in known:
            raise ConfigError(f"config {key}: unknown setting (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {"source_file": source}
    if "timezone" in data:
        zone = _want(data, "timezone", str, "")
        if zone:
            from zoneinfo import ZoneInfo  # noqa: PLC0415

            try:
                ZoneInfo(zone)
            except (KeyError, ValueError):
                raise ConfigError(f"config timezone: unknown time zone {zone!r}") from None
        values["timezone"] = zone
    if "week_start" in data:
        day = _want(data, "week_start", str, "").lower()
        if day not in WEEKDAYS:
            raise ConfigError(f"config week_start: expected a weekday name, got {day!r}")
        values["week_start"] = WEEKDAYS.index(day)
    if "cost_mode" in data:
        mode = _want(data, "cost_mode", str, "")
        if mode not in COST_MODES:
            raise ConfigError(f"config cost_mode: expected one of {', '.join(COST_MODES)}")
        values["cost_mode"] = mode
    blocks = data.get("blocks", {})
    if not isinstance(blocks, Mapping):
        raise ConfigError("config blocks: expected a table")
    if "hours" in blocks:
        hours = _want(blocks, "hours", int, "blocks.")
        if not 1 <= hours <= 24:
            raise ConfigError("config blocks.hours: expected 1 to 24")
        values["block_hours"] = hours
    pricing = data.get("pricing", {})
    if not isinstance(pricing, Mapping):
        raise ConfigError("config pricing: expected a table")
    if "url" in pricing:
        values["pricing_url"] = _want(pricing, "url", str, "pricing.")
    if "ttl_hours" in pricing:
        ttl = _want(pricing, "ttl_hours", (int, float), "pricing.")
        if ttl < 0:
            raise ConfigError("config pricing.ttl_hours: expected a number >= 0")
        values["pricing_ttl_hours"] = float(ttl)
    overrides = pricing.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError("config pricing.overrides: expected a table of models")
    parsed: dict[str, dict[str, float]] = {}
    for model, prices in overrides.items():
        where = f'pricing.overrides."{model}".'
        if not isinstance(prices, Mapping):
            raise ConfigError(f"config {where[:-1]}: expected a table of prices")
        entry: dict[str, float] = {}
        for name in prices:
            if name not in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"):
                raise ConfigError(f"config {where}{name}: unknown price")
            per_mtok = _want(prices, name, (int, float), where)
            if per_mtok < 0:
                raise ConfigError(f"config {where}{name}: expected a price >= 0")
            entry[name] = float(per_mtok) / 1e6
        if "input" not in entry or "output" not in entry:
            raise ConfigError(f"config {where[:-1]}: input and output prices are required")
        parsed[model] = entry
    values["price_overrides"] = parsed
    _parse_status(data, values)
    values["remote"] = _parse_remote(_table(data, "remote"))
    _parse_sync(_table(data, "sync"), values)
    tray = _table(data, "tray")
    for key in tray:
        if key != "show":
            raise ConfigError(f"config tray.{key}: unknown setting")
    if "show" in tray:
        show = _want(tray, "show", str, "tray.")
        if show not in TRAY_SHOW:
            raise ConfigError(f"config tray.show: expected {' or '.join(TRAY_SHOW)}, "
                              f"got {show!r}")
        values["tray_show"] = show
    return Config(**values)


def _url(table: Mapping[str, Any], key: str, where: str) -> str:
    url = str(_want(table, key, str, where)).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"config {where}{key}: expected an http(s) URL, got {url!r}")
    return url


def _parse_remote(remote: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    parsed: dict[str, dict[str, Any]] = {}
    for provider, table in remote.items():
        where = f"remote.{provider}."
        if provider not in REMOTE_MIN_TTL_S:
            raise ConfigError(f"config remote.{provider}: unknown provider (known: "
                              f"{', '.join(sorted(REMOTE_MIN_TTL_S))})")
        if not isinstance(table, Mapping):
            raise ConfigError(f"config remote.{provider}: expected a table")
        entry: dict[str, Any] = {}
        for key in table:
            if key not in ("base_url", "login_url", "ttl_seconds", "enabled") or (
                    key == "login_url" and provider != "copilot"):
                raise ConfigError(f"config {where}{key}: unknown setting")
        for key in ("base_url", "login_url"):
            if key in table:
                entry[key] = _url(table, key, where)
        if "ttl_seconds" in table:
            ttl = _positive(table, "ttl_seconds", where)
            if ttl < REMOTE_MIN_TTL_S[provider]:
                raise ConfigError(f"config {where}ttl_seconds: at least "
                                  f"{REMOTE_MIN_TTL_S[provider]:.0f} for {provider}")
            entry["ttl_s"] = ttl
        if "enabled" in table:
            entry["enabled"] = _want(table, "enabled", bool, where)
        parsed[provider] = entry
    return parsed


def _parse_sync(sync: Mapping[str, Any], values: dict[str, Any]) -> None:
    for key in sync:
        if key not in ("device", "target", "projects", "scope", "interval"):
            raise ConfigError(f"config sync.{key}: unknown setting")
    if "device" in sync:
        from tokline.sync.device import clean_name  # noqa: PLC0415

        name = clean_name(_want(sync, "device", str, "sync."))
        if not name:
            raise ConfigError("config sync.device: expected a name")
        values["sync_device"] = name
    if "target" in sync:
        target = _want(sync, "target", str, "sync.").strip()
        if target:
            values["sync_target"] = target
    for key, allowed in (("projects", ("name", "hash", "none")), ("scope", ("all", "local"))):
        if key in sync:
            value = _want(sync, key, str, "sync.")
            if value not in allowed:
                raise ConfigError(f"config sync.{key}: expected {' or '.join(allowed)}")
            values[f"sync_{key}"] = value
    if "interval" in sync:
        values["sync_interval_s"] = max(10.0, _positive(sync, "interval", "sync."))


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"config {name}: expected a table")
    return table


def _positive(table: Mapping[str, Any], key: str, where: str) -> float:
    value = float(_want(table, key, (int, float), where))
    if value <= 0:
        raise ConfigError(f"config {where}{key}: expected a number > 0")
    return value


def _parse_status(data: Mapping[str, Any], values: dict[str, Any]) -> None:
    status = _table(data, "status")
    for key in status:
        if key not in ("template", "refresh_interval", "stale_after", "notify"):
            raise ConfigError(f"config status.{key}: unknown setting")
    if "template" in status:
        from tokline.prompt.template import TemplateError, parse_template  # noqa: PLC0415

        template = _want(status, "template", str, "status.")
        try:
            parse_template(template)
        except TemplateError as exc:
            raise ConfigError(f"config status.template: {exc}") from None
        values["template"] = template
    if "refresh_interval" in status:
        values["refresh_interval_s"] = _positive(status, "refresh_interval", "status.")
    if "stale_after" in status:
        values["stale_after_s"] = _positive(status, "stale_after", "status.")
    if "notify" in status:
        values["notify"] = _want(status, "notify", bool, "status.")
    budget = _table(data, "budget")
    for key in budget:
        if key not in ("daily_usd", "weekly_usd", "monthly_usd", "plan", "block_tokens"):
            raise ConfigError(f"config budget.{key}: unknown setting")
    for key in ("daily_usd", "weekly_usd", "monthly_usd"):
        if key in budget:
            values[f"budget_{key}"] = _positive(budget, key, "budget.")
    if "plan" in budget:
        plan = _want(budget, "plan", str, "budget.")
        if plan not in PLAN_BLOCK_TOKENS and plan != "custom":
            raise ConfigError("config budget.plan: expected pro, max5, max20 or custom")
        values["plan"] = plan
    if "block_tokens" in budget:
        values["block_tokens"] = int(_positive(budget, "block_tokens", "budget."))
    thresholds = _table(data, "thresholds")
    for key in thresholds:
        if key not in ("warn", "critical"):
            raise ConfigError(f"config thresholds.{key}: unknown setting")
    warn = float(_want(thresholds, "warn", (int, float), "thresholds.")) \
        if "warn" in thresholds else 80.0
    critical = float(_want(thresholds, "critical", (int, float), "thresholds.")) \
        if "critical" in thresholds else 95.0
    if not 0 < warn <= critical:
        raise ConfigError("config thresholds: expected 0 < warn <= critical")
    values["warn_percent"], values["critical_percent"] = warn, critical


def load(path: str | os.PathLike[str] | None = None) -> Config:
    if path is None:
        from tokline.prompt.statefiles import config_path, dir_problem, refusal  # noqa: PLC0415

        path = config_path()
        if not os.environ.get("TOKLINE_CONFIG"):
            # a template from a directory others can write would choose what prompts show
            problem = dir_problem(os.path.dirname(path))
            if problem is not None:
                raise ConfigError(refusal(os.path.dirname(path), problem))
    path = os.fspath(path)
    if not os.path.exists(path):
        return Config()
    return parse(_load_toml(path), str(path))
