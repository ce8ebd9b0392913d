// Text, colour level and tooltip of the status bar item; no `vscode` import here.
// No formatting rules either: `tokline watch` sends each line `rendered` (the text, the
// level and every field already formatted by the code `tokline status` runs), so the
// status bar says what the shell prompt says for the same snapshot.
import { Snapshot } from "./snapshot";

export type Level = "ok" | "warning" | "error";

/** The field names of the extension's first releases, and the CLI's names for them. */
export const OLD_NAMES: Readonly<Record<string, string>> = {
  today: "today.cost",
  week: "week.cost",
  month: "month.cost",
  block: "block.cost",
  blockLeft: "block.left",
  quota5h: "quota.5h",
  quota7d: "quota.7d",
};

/** The `tokline.format` setting as a CLI template: old names become the CLI's. */
export function cliTemplate(template: string): string {
  return template.replace(/(?<!\{)\{(\w+)\}(?!\})/g, (whole: string, name: string) =>
    Object.prototype.hasOwnProperty.call(OLD_NAMES, name) ? `{${OLD_NAMES[name]}}` : whole,
  );
}

/** The status bar text, or undefined from a tokline too old to render it. */
export function statusText(snap: Snapshot): string | undefined {
  return snap.rendered?.text;
}

export function level(snap: Snapshot): Level {
  const top = snap.rendered?.level;
  return top === "crit" ? "error" : top === "warn" ? "warning" : "ok";
}

export function tooltip(snap: Snapshot, sources: string[] = []): string {
  const rendered = snap.rendered;
  if (!rendered) {
    return "**tokline**\n\nThis tokline is too old for the extension: `pip install -U tokline`.";
  }
  const f = rendered.fields;
  const lines = ["**tokline**", ""];
  for (const [label, key, period] of [["Today", "today", snap.today], ["Week", "week", snap.week], ["Month", "month", snap.month]] as const) {
    lines.push(`${label}: **${f[`${key}.cost`] ?? "—"}** · ${period.total_tokens.toLocaleString("en-US")} tokens`);
    for (const source of Object.keys(period.sources ?? {})) {
      const cost = f[`source.${source}.${key}`];
      if (cost && (sources.length === 0 || sources.includes(source))) {
        lines.push(`  - ${source}: ${cost}`);
      }
    }
    const models = Object.entries(period.models ?? {}).sort((a, b) => b[1].cost_usd - a[1].cost_usd);
    for (const [model] of models.slice(0, 5)) {
      const cost = f[`model.${model}.${key}`];
      if (cost) {
        lines.push(`  - _${model}_: ${cost}`);
      }
    }
  }
  if (f["block.cost"]) {
    let text = `5-hour block: ${f["block.cost"]}, ${f["block.left"]} left`;
    if (f["block.burn"]) {
      text += ` · ${f["block.burn"]} → ${f["block.projected"] ?? "—"}`;
    }
    lines.push("", text);
  }
  if (snap.quota.length) {
    lines.push("", "Quota:");
    for (const q of snap.quota) {
      const name = `quota.${q.source}.${q.window}`;
      const parts: string[] = [];
      if (typeof q.used_percent === "number" && f[name]) parts.push(f[name]);
      if (f[`${name}.spent`]) parts.push(`${f[`${name}.spent`]} spent`);
      if (f[`${name}.left`]) parts.push(`${f[`${name}.left`]} left`);
      if (q.note) parts.push(q.note);
      // pace and run-out as the CLI formats them (tokline/prompt/quotaview.py)
      if (f[`${name}.pace`]) parts.push(`${f[`${name}.pace`]} vs an even pace`);
      if (f[`${name}.runout`]) parts.push(`runs out ${f[`${name}.runout`]}`);
      const reset = f[`${name}.reset`] ? `, resets ${f[`${name}.reset`]}` : "";
      const kind = q.kind === "estimate" ? " (estimate)" : "";
      // an old figure: when it was read, where the CLI knows
      const asOf = f[`${name}.as_of`];
      const stale = q.stale ? (asOf ? ` (as of ${asOf})` : " (stale)") : "";
      lines.push(`  - ${q.source} ${q.window}: ${parts.join(", ") || "—"}${reset}${kind}${stale}`);
    }
  }
  if (rendered.stale) {
    lines.push("", `_${rendered.stale}: the figures of the last refresh_`);
  }
  return lines.join("\n");
}
