// The parts of `tokline status --json` / `tokline watch --json` the extension reads.
export interface Period {
  period?: string | null;
  cost_usd: number;
  total_tokens: number;
  unpriced: boolean;
  sources?: Record<string, { cost_usd: number; total_tokens: number; unpriced: boolean }>;
  models?: Record<string, { cost_usd: number; total_tokens: number; unpriced: boolean }>;
}

export interface Block extends Period {
  active: boolean;
  end: number;
  burn_rate_usd_per_hour?: number | null;
  projected_cost_usd?: number | null;
  used_percent?: number;
}

export interface QuotaWindow {
  source: string;
  window: string;
  // null for a spend or credit figure with no limit (an admin cost report, an uncapped key)
  used_percent: number | null;
  resets_at: number | null;
  kind: "official" | "estimate";
  as_of?: number | null;
  spent_usd?: number | null;
  remaining_usd?: number | null;
  balance_usd?: number | null;
  remaining?: number | null;
  note?: string | null;
  stale?: boolean | null;
}

export interface Budget {
  limit_usd: number;
  spent_usd: number;
  left_usd: number;
  used_percent: number;
}

/** What `tokline watch --json --format T` rendered: the CLI's text for the template. */
export interface Rendered {
  text: string;
  level: "warn" | "crit" | null;
  stale: string; // the stale note's words ("stale 2h"), "" while fresh
  fields: Record<string, string>; // every field with a value, by its template name
}

export interface Snapshot {
  today: Period;
  week: Period;
  month: Period;
  block: Block | null;
  quota: QuotaWindow[];
  budget?: Record<string, Budget>;
  stale_seconds?: number | null;
  rendered?: Rendered;
}

export function parseSnapshot(line: string): Snapshot | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const snap = value as Partial<Snapshot>;
  if (!snap.today || !snap.week || !snap.month) {
    return undefined;
  }
  return { ...snap, block: snap.block ?? null, quota: snap.quota ?? [] } as Snapshot;
}
