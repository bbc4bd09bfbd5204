import { createClient, describeError, type OtpRecord, VericodeApiError, webStorageTokenStore } from "vericode/client";

/** One client for the page; tokens live in sessionStorage, so a reload keeps the session. */
export const api = createClient({ tokens: webStorageTokenStore(sessionStorage, "vericode.react.tokens") });

export interface Notice {
  kind: "ok" | "error";
  text: string;
  code?: string;
}

/** A problem's `errors[]` member: only this shape is relied on, never the wording of the messages. */
export interface FieldError {
  field: string;
  message: string;
}

/** The field errors a form shows beside its inputs: input name → message. */
export interface FormErrors {
  form: string;
  fields: Record<string, string>;
}

/** API fields whose input has another name: the code step's `code`, the sign-in form's `login`. */
const INPUT_FOR: Record<string, string> = { otp_code: "code", username: "login", email: "login" };

function inputFor(form: HTMLFormElement, field: string): HTMLInputElement | HTMLSelectElement | null {
  for (const name of [field, INPUT_FOR[field]]) {
    const input = name === undefined ? null : form.elements.namedItem(name);
    if ((input instanceof HTMLInputElement || input instanceof HTMLSelectElement) && input.closest("[hidden]") === null) return input;
  }
  return null;
}

/**
 * Splits a failure's field errors between the inputs of `form` (shown beside them) and the rest (shown in
 * the notice). A number the service could not read is about the number's field even when it names none.
 */
export function placeFieldErrors(error: unknown, form: HTMLFormElement | null): { placed: FormErrors | null; rest: FieldError[] } {
  if (!(error instanceof VericodeApiError)) return { placed: null, rest: [] };
  let errors: FieldError[] = error.fieldErrors;
  if (errors.length === 0 && error.code === "invalid_phone_number" && error.message !== "") {
    errors = [{ field: "phone_number", message: error.message }];
  }
  if (form === null) return { placed: null, rest: errors };
  const fields: Record<string, string> = {};
  const rest: FieldError[] = [];
  for (const { field, message } of errors) {
    const input = inputFor(form, field);
    if (input === null) rest.push({ field, message });
    else fields[input.name] = fields[input.name] === undefined ? message : `${fields[input.name]} ${message}`;
  }
  return { placed: Object.keys(fields).length === 0 ? null : { form: form.id, fields }, rest };
}

/**
 * The notice for a failure, once its field errors are placed: the plain headline and what no field shows;
 * otherwise the headline and the service's own words when they add something, saying a wait only once.
 */
export function noticeOf(error: unknown, placed: FormErrors | null, rest: FieldError[]): Notice {
  if (!(error instanceof VericodeApiError)) return { kind: "error", text: error instanceof Error ? error.message : String(error) };
  const headline = describeError(error);
  if (placed !== null || rest.length > 0) {
    return { kind: "error", text: [headline, ...rest.map((e) => `${e.field}: ${e.message}`)].join(" "), code: error.code };
  }
  // The service's words already give the wait: the headline's "(wait …)" would say it a second time.
  if (error.retryAfter !== null && error.message !== "") return { kind: "error", text: error.message, code: error.code };
  // otp_invalid's headline already says how many tries are left.
  const repeats = error.code === "otp_invalid" || headline.includes(error.message);
  const detail = error.message !== "" && !repeats ? ` ${error.message}` : "";
  return { kind: "error", text: headline + detail, code: error.code };
}

/** What a delivery state means to the person waiting for the code (Twilio's words, and vericode's two). */
const DELIVERY: Record<string, string> = {
  logged: "in the service's log: the console provider writes messages there instead of sending them (development only)",
  not_sent: "no message: this test number (OTP_TEST_NUMBERS) has a fixed code",
  queued: "queued at the provider",
  accepted: "accepted by the provider",
  scheduled: "scheduled by the provider",
  sending: "being sent",
  sent: "sent to the carrier, not yet confirmed",
  delivered: "delivered to the phone",
  read: "delivered and read",
  undelivered: "not delivered: the carrier could not reach the phone",
  failed: "failed: the provider could not send it",
  canceled: "canceled",
};

export interface Delivery {
  status: string;
  text: string;
}

/** A code's delivery in words, with the raw state kept for programs (and tests). */
export function deliveryOf(record: Pick<OtpRecord, "delivery_status" | "status" | "channel" | "fallback_from"> | null): Delivery {
  if (record === null) return { status: "", text: "waiting for the provider" };
  const status = record.delivery_status ?? record.status;
  const words = DELIVERY[status] ?? status;
  return { status, text: record.fallback_from ? `${words} (by ${record.channel}: ${record.fallback_from} failed)` : words };
}
