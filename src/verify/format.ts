/** The last second formatted: a busy service formats the same second (a check's `date_updated`) many times. */
let lastSecond = Number.NaN;
let lastText = "";

/** `2026-11-26T00:37:47Z`: Twilio's dates, UTC without milliseconds (the SDK parses exactly this). */
export function twilioDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    // toISOString is `YYYY-MM-DDTHH:mm:ss.sssZ` for the years 0 to 9999: the milliseconds are cut.
    lastText = `${new Date(second * 1000).toISOString().slice(0, 19)}Z`;
    lastSecond = second;
  }
  return lastText;
}
