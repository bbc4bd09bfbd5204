/** What to write: see seedHistory. */
export interface HistoryPlan {
  codes: number;
  refusals: number;
  /** At most `codes`: code i belongs to challenge i % challenges. */
  challenges: number;
  days: number;
  /** Epoch milliseconds: the rows end just before it. */
  now: number;
}

/** Fills a migrated SQLite database with `plan`'s history (seed-history.mjs); answers how long it took and its oldest row's time. */
export function seedHistory(path: string, plan: HistoryPlan): { ms: number; from: number };
