// Counts every query the pg driver sends, by statement text, with its wall time; dumped on SIGUSR2.
import { writeFileSync } from "node:fs";
import pg from "pg";

const stats = new Map();
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, values, callback) {
  const text = typeof config === "string" ? config : (config?.text ?? "?");
  const key = text.replace(/\s+/g, " ").slice(0, 90);
  const started = process.hrtime.bigint();
  const s = stats.get(key) ?? { calls: 0, ns: 0n };
  s.calls++;
  stats.set(key, s);
  const result = original.call(this, config, values, callback);
  if (result && typeof result.then === "function")
    result.then(
      () => {
        s.ns += process.hrtime.bigint() - started;
      },
      () => {},
    );
  return result;
};
process.on("SIGUSR2", () => {
  const rows = [...stats.entries()]
    .sort((a, b) => b[1].calls - a[1].calls)
    .map(([k, v]) => ({ calls: v.calls, ms: Number(v.ns / 1000n) / 1000, sql: k }));
  writeFileSync(process.env.PG_COUNT_OUT ?? "/tmp/pg-count.json", JSON.stringify(rows, null, 1));
  stats.clear();
});
