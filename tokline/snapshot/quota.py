"""Quota windows the local data knows: Claude Code's official ones (from its status-line
stdin), Codex's (from its rollouts), and an estimate from the plan's block limit."""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Official windows other devices exported (tokline/sync/runner.py writes it, checked):
# {device hex id: [window, ...]}.  Quota is per account, not per device: never summed,
# the newest observation of a window wins (remote.merge).
SYNC_QUOTA = "sync-quota.json"


def synced(kept: Mapping[str, Any] | None, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The windows of ``kept`` (sync-quota.json), each marked with the device it came from."""
    out: list[dict[str, Any]] = []
    for device, windows in (kept or {}).items():
        for window in windows if isinstance(windows, list) else []:
            if isinstance(window, dict):
                out.append({**window, "kind": "official",
                            "device": names.get(device, device)})
    return out


def windows(claude_state: Mapping[str, Any] | None, block: Mapping[str, Any] | None,
                  now_s: float, codex_limits: Mapping[str, Any] | None = None
                  ) -> list[dict[str, Any]]:
    """Official windows from Claude Code's status-line stdin and from Codex's rollouts; an
    estimate from the plan's block limit when Claude has no official 5-hour figure."""
    windows: list[dict[str, Any]] = []
    for entry in (codex_limits or {}).get("windows", []):
        windows.append({"source": "codex", "window": entry["window"],
                        "used_percent": float(entry["used_percent"]),
                        "resets_at": entry.get("resets_at"), "kind": "official",
                        "as_of": round(int(codex_limits["ts"]) / 1000)})  # type: ignore[index]
    limits = (claude_state or {}).get("rate_limits")
    as_of = (claude_state or {}).get("as_of")
    if isinstance(limits, Mapping):
        names = {"five_hour": "5h", "seven_day": "7d", "seven_day_opus": "7d_opus",
                 "seven_day_sonnet": "7d_sonnet", "spend_limit": "spend"}
        for key, window in names.items():
            entry = limits.get(key)
            if not isinstance(entry, Mapping):
                continue
            used = entry.get("used_percentage")
            resets = entry.get("resets_at")
            if not isinstance(used, (int, float)) or isinstance(used, bool):
                continue
            windows.append({"source": "claude", "window": window, "used_percent": float(used),
                            "resets_at": resets if isinstance(resets, (int, float)) else None,
                            "kind": "official", "as_of": as_of})
    if block is not None and block.get("active") and "used_percent" in block \
            and not any(w["source"] == "claude" and w["window"] == "5h" for w in windows):
        windows.append({"source": "claude", "window": "5h", "used_percent": block["used_percent"],
                        "resets_at": block["end"], "kind": "estimate", "as_of": now_s})
    return windows
