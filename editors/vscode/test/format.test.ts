import { test } from "node:test";
import * as assert from "node:assert/strict";
import { fields, level, render, timeLeft, tooltip } from "../src/core/format";
import { parseSnapshot, Snapshot } from "../src/core/snapshot";

const NOW = 1_800_000_000;

function snapshot(extra: Partial<Snapshot> = {}): Snapshot {
  return {
    today: { cost_usd: 4.21, total_tokens: 1_000, unpriced: false, sources: { claude: { cost_usd: 4, total_tokens: 900, unpriced: false }, codex: { cost_usd: 0.21, total_tokens: 100, unpriced: false } }, models: { "claude-opus-4-5": { cost_usd: 4, total_tokens: 900, unpriced: false } } },
    week: { cost_usd: 20, total_tokens: 5_000, unpriced: false },
    month: { cost_usd: 80, total_tokens: 20_000, unpriced: true },
    block: { cost_usd: 1.8, total_tokens: 500, unpriced: false, active: true, end: NOW + 2 * 3600 + 13 * 60 + 5, burn_rate_usd_per_hour: 0.9, projected_cost_usd: 3.8 },
    quota: [
      { source: "claude", window: "5h", used_percent: 38, resets_at: NOW + 600, kind: "official" },
      { source: "codex", window: "7d", used_percent: 41.4, resets_at: null, kind: "official" },
    ],
    ...extra,
  };
}

test("fields and the default template", () => {
  const values = fields(snapshot(), NOW);
  assert.equal(values.today, "$4.21");
  assert.equal(values.month, "$80.00+?");
  assert.equal(values.blockLeft, "2h13m");
  assert.equal(render("$(pulse) {today}[ · 5h {quota5h}][ · 7d {quota7d}]", values), "$(pulse) $4.21 · 5h 38% · 7d 41%");
});

test("a group with an empty field disappears", () => {
  const values = fields(snapshot({ block: null, quota: [] }), NOW);
  assert.equal(render("{today}[ · 5h {block} ({blockLeft} left)][ · 7d {quota7d}]", values), "$4.21");
});

test("an ended block is not shown", () => {
  const values = fields(snapshot(), NOW + 3 * 3600);
  assert.equal(values.block, "");
});

test("levels follow the thresholds", () => {
  assert.equal(level(snapshot(), 80, 95), "ok");
  assert.equal(level(snapshot({ quota: [{ source: "claude", window: "5h", used_percent: 85, resets_at: null, kind: "official" }] }), 80, 95), "warning");
  assert.equal(level(snapshot({ budget: { daily: { limit_usd: 4, spent_usd: 4.21, left_usd: 0, used_percent: 105 } } }), 80, 95), "error");
});

test("tooltip lists periods, sources, block and quota", () => {
  const text = tooltip(snapshot(), NOW);
  assert.match(text, /Today: \*\*\$4\.21\*\*/);
  assert.match(text, /- codex: \$0\.21/);
  assert.match(text, /- _claude-opus-4-5_: \$4\.00/);
  assert.match(text, /5-hour block: \$1\.80, 2h13m left · \$0\.90\/h → \$3\.80/);
  assert.match(text, /- claude 5h: 38%, resets in 10m/);
  assert.doesNotMatch(tooltip(snapshot(), NOW, ["claude"]), /- codex: /);
});

test("spend and credit windows without a limit are never shown as 0 %", () => {
  const snap = snapshot({ quota: [
    { source: "anthropic-admin", window: "month", used_percent: null, resets_at: null, kind: "official", spent_usd: 11.74 },
    { source: "copilot", window: "premium", used_percent: null, resets_at: null, kind: "official", note: "managed by your organization", stale: true },
    { source: "openrouter", window: "credits", used_percent: 97, resets_at: null, kind: "official", remaining_usd: 3 },
  ] });
  const text = tooltip(snap, NOW);
  assert.match(text, /- anthropic-admin month: \$11\.74 spent\n/);
  assert.match(text, /- copilot premium: managed by your organization \(stale\)/);
  assert.match(text, /- openrouter credits: 97%, \$3\.00 left/);
  assert.equal(level(snapshot({ quota: [snap.quota[0]] }), 1, 2), "ok");
  assert.equal(level(snap, 80, 95), "error");
});

test("snapshot parsing is lenient", () => {
  assert.equal(parseSnapshot("not json"), undefined);
  assert.equal(parseSnapshot("{}"), undefined);
  const snap = parseSnapshot(JSON.stringify({ today: snapshot().today, week: snapshot().week, month: snapshot().month }));
  assert.ok(snap);
  assert.deepEqual(snap.quota, []);
  assert.equal(snap.block, null);
  assert.equal(timeLeft(59), "0m");
});
