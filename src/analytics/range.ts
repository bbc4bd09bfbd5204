import { isChannelName } from "../channels/channel.js";
import { VericodeError } from "../errors.js";
import { isPurpose } from "../records.js";
import { GROUPINGS, type Grouping, type ReportQuery } from "./report.js";

const DAY = 86_400_000;
/** The purpose a /v2 service's send attempts are kept under (store/verify-store.ts). */
const VERIFY_PURPOSE = /^verify:VA[0-9a-fA-F]{32}$/;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: DAY, w: 7 * DAY };

/** The longest range a report covers: a year. */
export const MAX_RANGE_MS = 366 * 86_400_000;

/** `7d`, `24h`, `90m`, `2w` → milliseconds; null when it is not such a duration. */
export function parseDuration(value: string): number | null {
  const match = /^(\d{1,5})([mhdw])$/.exec(value.trim());
  if (match === null) return null;
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

export interface RangeInput {
  since?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  group_by?: string | undefined;
  purpose?: string | undefined;
  /** A /v2 service's sid: its verifications only (their purpose is `verify:<sid>`). */
  service?: string | undefined;
  channel?: string | undefined;
  country?: string | undefined;
}

/**
 * A report's query from loose input (query string, CLI options): `since` (default 7d) or `from`, and
 * `to` (default now), as ISO 8601 times or, for `since`, a duration; every problem is a
 * validation_error naming its field.
 */
export function reportQuery(input: RangeInput, now: number): ReportQuery {
  const errors: { field: string; message: string }[] = [];
  const time = (field: "from" | "to", value: string): number | null => {
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) errors.push({ field, message: "must be an ISO 8601 date or time (2026-11-01 or 2026-11-01T12:00:00Z)" });
    return Number.isNaN(ms) ? null : ms;
  };
  const to = input.to === undefined ? now : (time("to", input.to) ?? now);
  let from = to - 7 * DAY;
  if (input.from !== undefined && input.since !== undefined) errors.push({ field: "since", message: "give since or from, not both" });
  else if (input.from !== undefined) from = time("from", input.from) ?? from;
  else if (input.since !== undefined) {
    const duration = parseDuration(input.since);
    if (duration === null) errors.push({ field: "since", message: "must be a duration such as 90m, 24h, 7d or 2w" });
    else from = to - duration;
  }
  if (from >= to) errors.push({ field: "from", message: "must be before to" });
  if (to - from > MAX_RANGE_MS) errors.push({ field: "from", message: "a report covers at most 366 days" });
  const groupBy = input.group_by ?? "day";
  if (!(GROUPINGS as readonly string[]).includes(groupBy)) errors.push({ field: "group_by", message: "must be day or hour" });
  else if (groupBy === "hour" && to - from > 31 * DAY) errors.push({ field: "group_by", message: "hourly series cover at most 31 days" });
  if (input.purpose !== undefined && !isPurpose(input.purpose) && !VERIFY_PURPOSE.test(input.purpose)) {
    errors.push({ field: "purpose", message: "must be registration, login, password_reset or verify:<service sid>" });
  }
  if (input.service !== undefined && !VERIFY_PURPOSE.test(`verify:${input.service}`)) {
    errors.push({ field: "service", message: "must be a Verify service sid (VA and 32 hex digits)" });
  } else if (input.service !== undefined && input.purpose !== undefined) {
    errors.push({ field: "service", message: "give purpose or service, not both" });
  }
  if (input.channel !== undefined && !isChannelName(input.channel))
    errors.push({ field: "channel", message: "must be sms, whatsapp, voice or email" });
  const country = input.country?.toUpperCase();
  if (country !== undefined && !/^[A-Z]{2}$/.test(country))
    errors.push({ field: "country", message: "must be an ISO 3166 alpha-2 code such as CR" });
  if (errors.length > 0) {
    throw new VericodeError(
      "validation_error",
      `The report's ${errors.map((e) => e.field).join(", ")} ${errors.length === 1 ? "is" : "are"} not valid.`,
      {
        extra: { errors },
      },
    );
  }
  return {
    from,
    to,
    groupBy: groupBy as Grouping,
    purpose: input.service === undefined ? input.purpose : `verify:${input.service}`,
    channel: input.channel as ReportQuery["channel"],
    country,
  };
}
