import { test } from "node:test";
import * as assert from "node:assert/strict";
import { cliTemplate, level, OLD_NAMES, statusText, tooltip } from "../src/core/format";
import { parseSnapshot, Snapshot } from "../src/core/snapshot";

// `rendered` as `tokline watch --json --format '$(pulse) {today.cost}[ · 5h {quota.5h}][ · 7d {quota.7d}]'`
// sends it: the CLI formats, the extension only shows.
function snapshot(extra: Partial<Snapshot> = {}): Snapshot {
  return {
    today: { cost_usd: 4.21, total_tokens: 1_000, unpriced: false, sources: { claude: { cost_usd: 4, total_tokens: 900, unpriced: false }, codex: { cost_usd: 0.21, total_tokens: 100, unpriced: false } }, models: { "claude-opus-4-5": { cost_usd: 4, total_tokens: 900, unpriced: false } } },
    week: { cost_usd: 20, total_tokens: 5_000, unpriced: false },
    month: { cost_usd: 80, total_tokens: 20_000, unpriced: true },
    block: { cost_usd: 1.8, total_tokens: 500, unpriced: false, active: true, end: 1_800_007_985, burn_rate_usd_per_hour: 0.9, projected_cost_usd: 3.8 },
    quota: [
      { source: "claude", window: "5h", used_percent: 38, resets_at: 1_800_000_600, kind: "official" },
      { source: "codex", window: "7d", used_percent: 41.4, resets_at: null, kind: "official" },
    ],
    rendered: {
      text: "$(pulse) $4.21 · 5h 38% · 7d 41%",
      level: null,
      stale: "",
      fields: {
        "today.cost": "$4.21", "week.cost": "$20.00", "month.cost": "$80.00+?",
        "source.claude.today": "$4.00", "source.codex.today": "$0.21",
        "model.claude-opus-4-5.today": "$4.00",
        "block.cost": "$1.80", "block.left": "2h13m", "block.burn": "$0.90/h", "block.projected": "$3.80",
        "quota.claude.5h": "38%", "quota.claude.5h.reset": "14:10", "quota.codex.7d": "41%",
        "quota.5h": "38%", "quota.7d": "41%",
      },
    },
    ...extra,
  };
}

test("the old field names become the CLI's", () => {
  assert.equal(cliTemplate("$(pulse) {today}[ · 5h {quota5h}][ · 7d {quota7d}]"), "$(pulse) {today.cost}[ · 5h {quota.5h}][ · 7d {quota.7d}]");
  assert.equal(cliTemplate("{week} {month} [{block} ({blockLeft} left)]"), "{week.cost} {month.cost} [{block.cost} ({block.left} left)]");
  for (const [old, name] of Object.entries(OLD_NAMES)) {
    assert.equal(cliTemplate(`{${old}}`), `{${name}}`);
  }
});

test("the CLI's names, unknown names and literal braces pass through", () => {
  const template = "{today.cost} {quota.claude.5h.reset} {{today}} {nosuch}";
  assert.equal(cliTemplate(template), template);
});

test("the status bar shows the CLI's text", () => {
  assert.equal(statusText(snapshot()), "$(pulse) $4.21 · 5h 38% · 7d 41%");
  assert.equal(statusText({ ...snapshot(), rendered: undefined }), undefined);
});

test("levels are the CLI's", () => {
  const with_ = (level: "warn" | "crit" | null) => snapshot({ rendered: { ...snapshot().rendered!, level } });
  assert.equal(level(with_(null)), "ok");
  assert.equal(level(with_("warn")), "warning");
  assert.equal(level(with_("crit")), "error");
});

test("tooltip lists periods, sources, block and quota", () => {
  const text = tooltip(snapshot());
  assert.match(text, /Today: \*\*\$4\.21\*\*/);
  assert.match(text, /- codex: \$0\.21/);
  assert.match(text, /- _claude-opus-4-5_: \$4\.00/);
  assert.match(text, /5-hour block: \$1\.80, 2h13m left · \$0\.90\/h → \$3\.80/);
  assert.match(text, /- claude 5h: 38%, resets 14:10/);
  assert.doesNotMatch(tooltip(snapshot(), ["claude"]), /- codex: /);
  assert.doesNotMatch(text, /stale/);
  const stale = tooltip(snapshot({ rendered: { ...snapshot().rendered!, stale: "stale 2h" } }));
  assert.match(stale, /_stale 2h: the figures of the last refresh_/);
});

test("spend and credit windows without a limit are never shown as 0 %", () => {
  const snap = snapshot({ quota: [
    { source: "anthropic-admin", window: "month", used_percent: null, resets_at: null, kind: "official", spent_usd: 11.74 },
    { source: "copilot", window: "premium", used_percent: null, resets_at: null, kind: "official", note: "managed by your organization", stale: true },
    { source: "openrouter", window: "credits", used_percent: 97, resets_at: null, kind: "official", remaining_usd: 3 },
  ] });
  snap.rendered!.fields = {
    ...snap.rendered!.fields,
    "quota.anthropic-admin.month": "$11.74", "quota.anthropic-admin.month.spent": "$11.74",
    "quota.copilot.premium": "", "quota.openrouter.credits": "97%", "quota.openrouter.credits.left": "$3.00",
  };
  const text = tooltip(snap);
  assert.match(text, /- anthropic-admin month: \$11\.74 spent\n/);
  assert.match(text, /- copilot premium: managed by your organization \(stale\)/);
  assert.match(text, /- openrouter credits: 97%, \$3\.00 left/);
});

test("quota pace, run-out and the time of an old figure come from the CLI's fields", () => {
  const snap = snapshot({ quota: [
    { source: "claude", window: "7d", used_percent: 40, resets_at: 1_800_000_600, kind: "official", stale: true, as_of: 1_799_990_000 },
  ] });
  snap.rendered!.fields = {
    ...snap.rendered!.fields,
    "quota.claude.7d": "40%*", "quota.claude.7d.reset": "Thu 14:00", "quota.claude.7d.pace": "+11%",
    "quota.claude.7d.runout": "Tue 14:00", "quota.claude.7d.as_of": "14:02",
  };
  assert.match(tooltip(snap), /- claude 7d: 40%\*, \+11% vs an even pace, runs out Tue 14:00, resets Thu 14:00 \(as of 14:02\)/);
});

test("snapshot parsing is lenient", () => {
  assert.equal(parseSnapshot("not json"), undefined);
  assert.equal(parseSnapshot("{}"), undefined);
  const snap = parseSnapshot(JSON.stringify({ today: snapshot().today, week: snapshot().week, month: snapshot().month }));
  assert.ok(snap);
  assert.deepEqual(snap.quota, []);
  assert.equal(snap.block, null);
  assert.match(tooltip(snap), /too old/);
});
