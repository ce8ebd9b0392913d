"""Quota windows the local data knows: Claude Code's official ones (from its status-line
stdin), Codex's (from its rollouts), and an estimate from the plan's block limit."""

from __future__ import annotations

from collections.abc import Mapping

from tokline.prompt import quotaview

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
        window = {"source": "codex", "window": entry["window"],
                  "used_percent": float(entry["used_percent"]),
                  "resets_at": entry.get("resets_at"), "kind": "official",
                  "as_of": round(int(codex_limits["ts"]) / 1000)}  # type: ignore[index]
        if entry.get("window_s"):
            window["window_s"] = entry["window_s"]
        windows.append(window)
    # Claude Code's statusLine figures: a 0 % without a reset time is no reading (its
    # own fetch failed) and is left out, like everywhere (tokline/prompt/quotaview.py)
    windows += quotaview.stdin_windows((claude_state or {}).get("rate_limits"),
                                       (claude_state or {}).get("as_of"))
    if block is not None and block.get("active") and "used_percent" in block \
            and not any(w["source"] == "claude" and w["window"] == "5h" for w in windows):
        windows.append({"source": "claude", "window": "5h", "used_percent": block["used_percent"],
                        "resets_at": block["end"], "kind": "estimate", "as_of": now_s,
                        "window_s": block["end"] - block["start"]})
    return windows
