import { Type } from "@sinclair/typebox";
import { CHANNEL_NAMES, type ChannelName } from "../channels/channel.js";
import type { FieldError } from "../errors.js";
import { checkString, FIELD, fieldError, validationError } from "../field-errors.js";
import { PURPOSES, verifyPurpose } from "../records.js";
import type { Grouping, ReportQuery } from "./report.js";

const DAY = 86_400_000;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: DAY, w: 7 * DAY };

/** The longest range a report covers: a year. */
export const MAX_RANGE_MS = 366 * 86_400_000;

/** The longest range an hourly series covers: a month. */
const MAX_HOURLY_MS = 31 * DAY;

/** `7d`, `24h`, `90m`, `2w` → milliseconds; null when it is not such a duration. */
export function parseDuration(value: string): number | null {
  const match = /^(\d{1,5})([mhdw])$/.exec(value.trim());
  if (match === null) return null;
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

/**
 * An ISO 8601 date or time (`2026-11-01`, `2026-11-01T12:00:00Z`, `2026-11-01T12:00+02:00`) → milliseconds;
 * null for anything else. Date.parse alone would read `12` or `May 3` as dates too.
 */
export function parseIsoTime(value: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i.test(value.trim())) return null;
  const ms = Date.parse(value.trim());
  return Number.isNaN(ms) ? null : ms;
}

const TIME = "an ISO 8601 date or time, such as 2026-11-01 or 2026-11-01T12:00:00Z";

/**
 * A report's query, declared once: the analytics routes validate and document it (OpenAPI), and
 * reportQuery checks the CLI's options with the same rules and words. Its check (the ranges) runs with
 * the schema, so one answer names every invalid parameter.
 */
export const ReportParams = Type.Object(
  {
    since: Type.Optional(
      Type.String({
        maxLength: 40,
        description: "How far back from `to`: a duration (90m, 24h, 7d, 2w) or an ISO 8601 date or time, as `from`. Default 7d.",
        examples: ["7d", "2026-11-01"],
        [FIELD]: { rule: `a duration such as 90m, 24h, 7d or 2w, or ${TIME}` },
      }),
    ),
    from: Type.Optional(
      Type.String({ maxLength: 40, description: "Start (ISO 8601), instead of since.", examples: ["2026-11-01"], [FIELD]: { rule: TIME } }),
    ),
    to: Type.Optional(Type.String({ maxLength: 40, description: "End, exclusive (ISO 8601). Default now.", [FIELD]: { rule: TIME } })),
    group_by: Type.Optional(Type.Union([Type.Literal("day"), Type.Literal("hour")], { description: "Buckets of the time series (UTC)." })),
    purpose: Type.Optional(
      Type.String({
        maxLength: 45,
        pattern: `^(${PURPOSES.join("|")}|verify:VA[0-9a-fA-F]{32})$`,
        description: "Only this purpose: registration, login, password_reset, or `verify:<service sid>` for a Twilio Verify v2 service.",
        [FIELD]: { rule: `one of ${PURPOSES.join(", ")}, or verify: and a Verify service's sid` },
      }),
    ),
    service: Type.Optional(
      Type.String({
        maxLength: 34,
        pattern: "^VA[0-9a-fA-F]{32}$",
        description: "Only this Twilio Verify v2 service's verifications (its `VA…` sid; their purpose is `verify:<sid>`).",
        [FIELD]: { rule: "a Verify service's sid: VA and 32 hex digits" },
      }),
    ),
    channel: Type.Optional(
      Type.Unsafe<ChannelName>({
        type: "string",
        enum: [...CHANNEL_NAMES],
        description: "Only this channel (sms, whatsapp, voice, email); refusals have none.",
      }),
    ),
    country: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z]{2}$",
        maxLength: 2,
        description: "Only this country, ISO 3166 alpha-2 (CR).",
        [FIELD]: { rule: "an ISO 3166 alpha-2 country code, such as CR" },
      }),
    ),
  },
  { additionalProperties: false, [FIELD]: { check: (query, { now }) => reportErrors(query as RangeInput, now).errors } },
);

export interface RangeInput {
  since?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  group_by?: string | undefined;
  purpose?: string | undefined;
  /** A /v2 service's sid: its verifications only. */
  service?: string | undefined;
  channel?: string | undefined;
  country?: string | undefined;
}

const fields = ReportParams.properties;

/** A string parameter against its own rule; the error, or null (as the route's schema checks it). */
function checked(name: keyof typeof fields, value: string | undefined): FieldError | null {
  return typeof value === "string" ? checkString(name, fields[name], value) : null;
}

/** The range's bounds from `since` (a duration or a time), `from` and `to`, with the errors of each. */
function range(input: RangeInput, now: number, errors: FieldError[]): { from: number; to: number } {
  const time = (name: "from" | "to" | "since", value: string): number | null => {
    const ms = parseIsoTime(value);
    if (ms === null) errors.push(fieldError(name, "invalid_format", fields[name]));
    return ms;
  };
  const to = input.to === undefined ? now : (time("to", input.to) ?? now);
  let from = to - 7 * DAY;
  if (input.from !== undefined && input.since !== undefined) {
    errors.push({ field: "since", code: "conflicting_fields", message: "cannot come with from: give one of the two" });
  } else if (input.from !== undefined) from = time("from", input.from) ?? from;
  else if (input.since !== undefined) {
    const duration = parseDuration(input.since);
    from = duration === null ? (time("since", input.since) ?? from) : to - duration;
  }
  const start = input.since !== undefined && input.from === undefined ? "since" : "from";
  if (from >= to) errors.push({ field: start, code: "out_of_range", message: "is not before to: give a start before the end" });
  else if (to - from > MAX_RANGE_MS) {
    errors.push({ field: start, code: "out_of_range", message: "is more than 366 days before to: a report covers at most 366 days" });
  }
  return { from, to };
}

/** Every invalid parameter of a report's query, each in the catalogue's words, and the range it gives. */
function reportErrors(input: RangeInput, now: number): { errors: FieldError[]; from: number; to: number } {
  const errors: FieldError[] = [];
  for (const name of ["since", "from", "to"] as const) {
    const error = checked(name, input[name]);
    if (error !== null) errors.push(error);
  }
  const { from, to } = errors.length > 0 ? { from: now - 7 * DAY, to: now } : range(input, now, errors);
  const grouping = checked("group_by", input.group_by);
  if (grouping !== null) errors.push(grouping);
  else if (input.group_by === "hour" && to - from > MAX_HOURLY_MS) {
    errors.push({ field: "group_by", code: "out_of_range", message: "is hour over more than 31 days: use day, or a shorter range" });
  }
  for (const name of ["purpose", "service", "channel", "country"] as const) {
    const error = checked(name, input[name]);
    if (error !== null) errors.push(error);
  }
  if (input.service !== undefined && input.purpose !== undefined) {
    errors.push({ field: "service", code: "conflicting_fields", message: "cannot come with purpose: give one of the two" });
  }
  return { errors, from, to };
}

/**
 * A report's query from loose input (query string, CLI options): `since` (default 7d) or `from`, and
 * `to` (default now), as ISO 8601 dates or times or, for `since`, a duration too; every problem is one
 * validation_error naming each field.
 */
export function reportQuery(input: RangeInput, now: number): ReportQuery {
  const { errors, from, to } = reportErrors(input, now);
  if (errors.length > 0) throw validationError(errors);
  return {
    from,
    to,
    groupBy: (input.group_by ?? "day") as Grouping,
    purpose: input.service === undefined ? input.purpose : verifyPurpose(input.service),
    channel: input.channel as ReportQuery["channel"],
    country: input.country?.toUpperCase(),
  };
}
