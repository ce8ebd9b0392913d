// Text, colour level and tooltip of the status bar item; no `vscode` import here.
import { QuotaWindow, Snapshot } from "./snapshot";

export type Level = "ok" | "warning" | "error";

export function money(cost: number, unpriced = false): string {
  return `$${cost.toFixed(2)}${unpriced ? "+?" : ""}`;
}

export function timeLeft(seconds: number): string {
  const minutes = Math.max(0, Math.floor(seconds / 60));
  return minutes >= 60
    ? `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`
    : `${minutes}m`;
}

function percents(values: (number | null | undefined)[]): number[] {
  return values.filter((v): v is number => typeof v === "number");
}

export function highestQuota(snap: Snapshot, window: string): number | undefined {
  const values = percents(snap.quota.filter((q) => q.window === window).map((q) => q.used_percent));
  return values.length ? Math.max(...values) : undefined;
}

export function quotaText(q: QuotaWindow): string {
  const parts: string[] = [];
  if (typeof q.used_percent === "number") parts.push(`${Math.round(q.used_percent)}%`);
  if (typeof q.spent_usd === "number") parts.push(`${money(q.spent_usd)} spent`);
  const left = q.remaining_usd ?? q.balance_usd;
  if (typeof left === "number") parts.push(`${money(left)} left`);
  else if (typeof q.remaining === "number") parts.push(`${Math.round(q.remaining)} left`);
  if (q.note) parts.push(q.note);
  return parts.join(", ") || "—";
}

export function fields(snap: Snapshot, nowSeconds: number): Record<string, string> {
  const out: Record<string, string> = {
    today: money(snap.today.cost_usd, snap.today.unpriced),
    week: money(snap.week.cost_usd, snap.week.unpriced),
    month: money(snap.month.cost_usd, snap.month.unpriced),
    block: "",
    blockLeft: "",
    quota5h: "",
    quota7d: "",
  };
  const block = snap.block;
  if (block && block.active && block.end > nowSeconds) {
    out.block = money(block.cost_usd, block.unpriced);
    out.blockLeft = timeLeft(block.end - nowSeconds);
  }
  for (const [key, window] of [["quota5h", "5h"], ["quota7d", "7d"]] as const) {
    const pct = highestQuota(snap, window);
    if (pct !== undefined) {
      out[key] = `${Math.round(pct)}%`;
    }
  }
  return out;
}

/** `{field}` placeholders; `[...]` is dropped when a field inside it is empty. */
export function render(template: string, values: Record<string, string>): string {
  const fill = (text: string): string | undefined => {
    let empty = false;
    const result = text.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = values[name] ?? "";
      if (!value) {
        empty = true;
      }
      return value;
    });
    return empty ? undefined : result;
  };
  const withGroups = template.replace(/\[([^\]]*)\]/g, (_, inner: string) => fill(inner) ?? "");
  return withGroups.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? "");
}

export function level(snap: Snapshot, warn: number, error: number): Level {
  const all = percents([
    ...snap.quota.map((q) => q.used_percent),
    ...Object.values(snap.budget ?? {}).map((b) => b.used_percent),
  ]);
  if (snap.block?.active && snap.block.used_percent !== undefined) {
    all.push(snap.block.used_percent);
  }
  const top = all.length ? Math.max(...all) : 0;
  return top >= error ? "error" : top >= warn ? "warning" : "ok";
}

export function tooltip(snap: Snapshot, nowSeconds: number, sources: string[] = []): string {
  const lines = ["**tokline**", ""];
  for (const [label, period] of [["Today", snap.today], ["Week", snap.week], ["Month", snap.month]] as const) {
    lines.push(`${label}: **${money(period.cost_usd, period.unpriced)}** · ${period.total_tokens.toLocaleString("en-US")} tokens`);
    for (const [source, totals] of Object.entries(period.sources ?? {})) {
      if (sources.length === 0 || sources.includes(source)) {
        lines.push(`  - ${source}: ${money(totals.cost_usd, totals.unpriced)}`);
      }
    }
    const models = Object.entries(period.models ?? {}).sort((a, b) => b[1].cost_usd - a[1].cost_usd);
    for (const [model, totals] of models.slice(0, 5)) {
      lines.push(`  - _${model}_: ${money(totals.cost_usd, totals.unpriced)}`);
    }
  }
  const block = snap.block;
  if (block && block.active && block.end > nowSeconds) {
    let text = `5-hour block: ${money(block.cost_usd, block.unpriced)}, ${timeLeft(block.end - nowSeconds)} left`;
    if (block.burn_rate_usd_per_hour) {
      text += ` · ${money(block.burn_rate_usd_per_hour)}/h → ${money(block.projected_cost_usd ?? 0)}`;
    }
    lines.push("", text);
  }
  if (snap.quota.length) {
    lines.push("", "Quota:");
    for (const q of snap.quota) {
      const reset = q.resets_at ? `, resets in ${timeLeft(q.resets_at - nowSeconds)}` : "";
      const kind = q.kind === "estimate" ? " (estimate)" : "";
      const stale = q.stale ? " (stale)" : "";
      lines.push(`  - ${q.source} ${q.window}: ${quotaText(q)}${reset}${kind}${stale}`);
    }
  }
  if (snap.stale_seconds && snap.stale_seconds > 3600) {
    lines.push("", `_as of ${Math.round(snap.stale_seconds / 60)} minutes ago_`);
  }
  return lines.join("\n");
}
