/** `2026-11-26T00:37:47Z`: Twilio's dates, UTC without milliseconds (the SDK parses exactly this). */
export function twilioDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
