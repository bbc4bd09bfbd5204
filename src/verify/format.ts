/**
 * The last two seconds formatted: a busy service formats the same few seconds over and over (a check's
 * `date_updated` is now; a burst of starts shares their `date_created`), and an answer asks for two dates.
 */
const seconds = [Number.NaN, Number.NaN];
const texts = ["", ""];
let older = 0;

/** `2026-11-26T00:37:47Z`: Twilio's dates, UTC without milliseconds (the SDK parses exactly this). */
export function twilioDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (seconds[0] === second) return texts[0] as string;
  if (seconds[1] === second) return texts[1] as string;
  const iso = new Date(second * 1000).toISOString();
  // `YYYY-MM-DDTHH:mm:ss.sssZ` for the years 0 to 9999; the rare others (`+010000-…`) keep their form.
  const text = iso.length === 24 ? `${iso.slice(0, 19)}Z` : iso.replace(/\.\d{3}Z$/, "Z");
  seconds[older] = second;
  texts[older] = text;
  older = 1 - older;
  return text;
}
