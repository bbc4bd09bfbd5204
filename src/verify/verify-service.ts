import type { CountryCode } from "libphonenumber-js/max";
import type { Channel, ChannelName, DeliveryOutcome } from "../channels/channel.js";
import type { Clock } from "../clock.js";
import { normaliseEmail } from "../email.js";
import { failClosed } from "../errors.js";
import { COUNTRY_LANGUAGE } from "../i18n/templates.js";
import { newId } from "../ids.js";
import type { Bucket } from "../limits/limiter.js";
import { numberPrefix, type Protection, type Refusal } from "../limits/protection.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { deliveryUpdate, spentOn } from "../otp/delivery.js";
import { maskPhone, type PhoneInfo, parsePhone } from "../phone.js";
import type { OtpKey } from "../records.js";
import type { BudgetHold, CodeStore } from "../store/store.js";
import {
  type AttemptRow,
  type Checked,
  type SendAttempt,
  type StartInput,
  type VerificationRecord,
  type VerifyServiceRecord,
  type VerifyStore,
  verifyPurpose,
} from "../store/verify-store.js";
import { sameCode, VerifyCodes } from "./code.js";
import { invalidParameter, notFound, tooManyRequests, VerifyError } from "./errors.js";
import { newSid } from "./sids.js";
import { verifyLocale, verifyMessage, verifySpoken } from "./templates.js";

/** Twilio Verify's fixed rules (https://twilio.com/docs/verify/api/rate-limits-and-timeouts). */
export const VERIFY_RULES = { ttlMs: 10 * 60 * 1000, maxSends: 5, maxChecks: 5 } as const;

/** Twilio's channels, and the vericode channel each travels by (`auto` is an SMS). */
const CHANNELS: Readonly<Record<string, ChannelName>> = { sms: "sms", call: "voice", whatsapp: "whatsapp", email: "email", auto: "sms" };

export interface VerifyServiceOptions {
  store: VerifyStore;
  codes: CodeStore;
  channels: ReadonlyMap<ChannelName, Channel>;
  protection: Protection;
  keys: readonly OtpKey[];
  clock: Clock;
  log: Logger;
  metrics?: Metrics;
  defaultCountry: CountryCode | null;
  /** OTP_TEST_NUMBERS: E.164 → fixed code, never sent and never limited. */
  testNumbers: ReadonlyMap<string, string>;
  sendTimeoutMs: number;
}

/** A start, as the /v2 route read it from Twilio's parameters. */
export interface StartRequest {
  to: string;
  channel: string;
  locale: string | null;
  customFriendlyName: string | null;
  appHash: string | null;
  /** The end user's address (`DeviceIp`): it counts on the per-address limit, the caller's own never does. */
  deviceIp: string | null;
  /** `RateLimits`: a value per rate limit's unique name. */
  rateLimits: Readonly<Record<string, string>>;
  /** `ChannelConfiguration`'s `from` and `from_name`, for the email channel. */
  sender: { address: string; name: string | null } | null;
}

/** A verification as the API shows it: its record, its sends, and the number's type when lookup is on. */
export interface VerificationView {
  verification: VerificationRecord;
  attempts: SendAttempt[];
  lookup: { type: string } | null;
}

/**
 * Twilio Verify v2's behaviour on vericode's store, channels and protection: a verification lives ten
 * minutes, resends the same code (derived, never stored) at most five times, takes at most five checks,
 * and is gone (404) once approved, canceled, expired or out of checks.
 */
export class VerifyService {
  readonly #o: VerifyServiceOptions;
  readonly #codes: VerifyCodes;

  constructor(options: VerifyServiceOptions) {
    this.#o = options;
    this.#codes = new VerifyCodes(options.keys);
  }

  get store(): VerifyStore {
    return this.#o.store;
  }

  async service(sid: string, path: string): Promise<VerifyServiceRecord> {
    const service = await guard(this.#o.store.getService(sid));
    if (service === null) throw notFound(path);
    return service;
  }

  /** Starts a verification, or sends the pending one's code again (same sid, same code). */
  async start(service: VerifyServiceRecord, request: StartRequest): Promise<VerificationView> {
    const channelName = CHANNELS[request.channel];
    if (channelName === undefined) {
      throw invalidParameter(
        "Channel",
        `Channel must be sms, call, whatsapp, email or auto; ${JSON.stringify(request.channel)} is not offered.`,
      );
    }
    const channel = this.#o.channels.get(channelName);
    if (channel === undefined) throw invalidParameter("Channel", `The ${request.channel} channel is not configured on this service.`);
    const { to, phone } = this.#destination(request.to, channelName);
    // Twilio's SkipSmsToLandlines needs the service's lookup: the number's type comes from it.
    const lookup = service.settings.lookup_enabled === true;
    if (lookup && service.settings.skip_sms_to_landlines === true && channelName === "sms" && phone?.type === "FIXED_LINE") {
      throw new VerifyError(60205, 403, "SMS is not supported by landline phone number");
    }
    const target = { to, phone, channel, locale: this.#locale(request, phone) };
    const sent = await this.#send(service, request, target);
    // The pending verification's key was removed from OTP_SECRETS: it ended, and a new one starts.
    return sent ?? ((await this.#send(service, request, target)) as VerificationView);
  }

  /** One send: admit, open (a new verification or the pending one), deliver; null when the pending one had to end. */
  async #send(
    service: VerifyServiceRecord,
    request: StartRequest,
    target: { to: string; phone: PhoneInfo | null; channel: Channel; locale: string },
  ): Promise<VerificationView | null> {
    const { to, phone, channel, locale } = target;
    const now = this.#o.clock.now().getTime();
    const fixedCode = this.#o.testNumbers.get(to);
    const admitted = fixedCode === undefined ? await this.#admit(service, to, phone, request, now) : { taken: [], hold: null };
    const fresh = {
      sid: newSid("VE"),
      ...this.#codes.fresh(),
      codeLength: service.codeLength,
      locale,
      expiresAt: now + VERIFY_RULES.ttlMs,
    };
    const attempt = {
      sid: newSid("VL"),
      channel: fixedCode === undefined ? channel.name : "test",
      country: phone === null ? null : (phone.country ?? `+${phone.callingCode}`),
      priceMicros: admitted.hold?.micros ?? null,
    };
    const started = await this.#open(service, { to, channelName: channel.name, now, fresh, attempt }, admitted);
    const verification = started.verification;
    if (started.kind === "max_sends") throw new VerifyError(60203, 429, "Max send attempts reached");
    if (fixedCode !== undefined) {
      await guard(this.#o.codes.updateDelivery(attempt.sid, { status: "sent", deliveryStatus: "not_sent" }, now));
      return this.view(service, verification);
    }
    const code = this.#codes.code(verification);
    if (code === null) {
      this.#o.log.warn(
        { event: "verify.key_removed", sid: verification.sid, keyId: verification.keyId },
        "a pending verification's key is gone: it ends",
      );
      await guard(
        this.#o.codes.updateDelivery(attempt.sid, { status: "failed", providerErrorCode: "key_removed", deliveryStatus: "not_sent" }, now),
      );
      await guard(this.#o.store.endVerification(service.sid, verification.sid, "canceled", now));
      await guardLimiter(this.#o.protection.giveBackAppSend(admitted.taken, admitted.hold, now));
      return null;
    }
    await this.#deliver(service, verification, request, { channel, attemptSid: attempt.sid, code, phone, hold: admitted.hold, now });
    return this.view(service, verification);
  }

  /** The verification's code, for a test number's fixed code or the derived one. */
  #expectedCode(verification: VerificationRecord): string | null {
    return this.#o.testNumbers.get(verification.to) ?? this.#codes.code(verification);
  }

  /** Checks a code against the pending verification of `to`, or the one `verificationSid` names. */
  async check(
    service: VerifyServiceRecord,
    code: string,
    target: { to: string } | { sid: string },
    path: string,
  ): Promise<VerificationRecord> {
    const now = this.#o.clock.now().getTime();
    const key = "to" in target ? { to: this.#checkAddress(target.to) } : target;
    await this.#admitCheck(service, key, now, path);
    const checked: Checked = await guard(
      this.#o.store.checkVerification(service.sid, key, now, VERIFY_RULES.maxChecks, (v) => sameCode(code, this.#expectedCode(v))),
    );
    this.#o.metrics?.verified(checked.kind === "approved" ? "verified" : checked.kind === "mismatch" ? "invalid" : checked.kind);
    const audited = "verification" in checked ? checked.verification : checked.known;
    this.#o.log.info(
      {
        event: "verify.check",
        outcome: checked.kind,
        service: service.sid,
        sid: audited?.sid,
        to: audited === null ? undefined : mask(audited.to),
      },
      `verify check: ${checked.kind}`,
    );
    switch (checked.kind) {
      case "not_found":
        throw notFound(path, checked.known === null ? undefined : gone(checked.known, now));
      case "max_checks":
        throw new VerifyError(60202, 429, "Max check attempts reached");
      case "approved":
        await this.#noteVerified(checked.verification, now);
        return checked.verification;
      default:
        return checked.verification;
    }
  }

  /**
   * RATE_LIMIT_VERIFY per destination, as on the native API: guesses at one number stay bounded however
   * many verifications are started for it. Test numbers are not limited.
   */
  async #admitCheck(service: VerifyServiceRecord, key: { to: string } | { sid: string }, now: number, path: string): Promise<void> {
    let to: string;
    if ("to" in key) to = key.to;
    else {
      const known = await guard(this.#o.store.getVerification(service.sid, key.sid));
      if (known === null) throw notFound(path);
      to = known.to;
    }
    if (this.#o.testNumbers.has(to)) return;
    const admitted = await guardLimiter(this.#o.protection.admitAppTry(to, now));
    if (admitted.ok) return;
    this.#o.metrics?.verified("rate_limited");
    throw tooManyRequests(Math.max(1, Math.ceil(admitted.retryAfterMs / 1000)), "Too many checks for this number (RATE_LIMIT_VERIFY).");
  }

  /** A pending verification, or 404 that says (in `details`) whether it was approved, canceled or expired. */
  async fetch(service: VerifyServiceRecord, sid: string, path: string): Promise<VerificationView> {
    const now = this.#o.clock.now().getTime();
    const verification = await guard(this.#o.store.getVerification(service.sid, sid));
    if (verification === null) throw notFound(path);
    if (verification.status !== "pending" || verification.expiresAt <= now) throw notFound(path, gone(verification, now));
    return this.view(service, verification);
  }

  /** Ends a pending verification: `canceled`, or `approved` by the application itself. */
  async end(service: VerifyServiceRecord, sid: string, status: "approved" | "canceled", path: string): Promise<VerificationView> {
    const now = this.#o.clock.now().getTime();
    const ended = await guard(this.#o.store.endVerification(service.sid, sid, status, now));
    if (ended === null) {
      const known = await guard(this.#o.store.getVerification(service.sid, sid));
      throw notFound(path, known === null ? undefined : gone(known, now));
    }
    if (status === "approved") await this.#noteVerified(ended, now);
    this.#o.log.info({ event: "verify.end", service: service.sid, sid, status, to: mask(ended.to) }, `verification ${status}`);
    return this.view(service, ended);
  }

  async view(service: VerifyServiceRecord, verification: VerificationRecord): Promise<VerificationView> {
    const attempts = await guard(this.#o.store.sendAttempts(verification));
    const phone = service.settings.lookup_enabled === true ? parsePhone(verification.to, null) : null;
    return { verification, attempts, lookup: phone === null ? null : { type: numberType(phone) } };
  }

  /** `To`, read for its channel: E.164 for a phone channel, an address for email. */
  #destination(given: string, channel: ChannelName): { to: string; phone: PhoneInfo | null } {
    if (channel === "email") {
      const address = normaliseEmail(given);
      if (address === null) throw invalidParameter("To", "To must be an email address for the email channel.");
      return { to: address, phone: null };
    }
    const phone = given.startsWith("+") ? parsePhone(given, this.#o.defaultCountry) : null;
    if (phone === null) throw invalidParameter("To", "To must be a phone number in E.164 format, such as +50688887777.");
    return { to: phone.e164, phone };
  }

  #checkAddress(given: string): string {
    if (given.includes("@")) return normaliseEmail(given) ?? given;
    return parsePhone(given, this.#o.defaultCountry)?.e164 ?? given;
  }

  /**
   * `Locale` when vericode has messages in it; a language it has none in (Twilio has some 40) falls back,
   * as a missing Locale does, to the number's country's language, else English. A malformed tag is 60200.
   */
  #locale(request: StartRequest, phone: PhoneInfo | null): string {
    if (request.locale !== null) {
      if (!/^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$/.test(request.locale)) {
        throw invalidParameter("Locale", `${JSON.stringify(request.locale.slice(0, 40))} is not a language tag such as es or pt-BR.`);
      }
      const locale = verifyLocale(request.locale);
      if (locale !== null) return locale;
    }
    const language = phone?.country === undefined ? undefined : COUNTRY_LANGUAGE[phone.country];
    return (language === undefined ? null : verifyLocale(language)) ?? "en";
  }

  /** vericode's protection, in Twilio's codes; the service's rate limits named in `RateLimits` too. */
  async #admit(service: VerifyServiceRecord, to: string, phone: PhoneInfo | null, request: StartRequest, now: number) {
    const extra = await this.#serviceBuckets(service, request.rateLimits);
    const admitted = await guardLimiter(this.#o.protection.admitAppSend(to, phone, request.deviceIp, extra, now));
    if (admitted.ok) return admitted;
    const { refusal } = admitted;
    // Kept as the native API's refusals are: the report counts them under the service's purpose.
    await guard(
      this.#o.codes.recordRefusal({
        id: newId("ref", now),
        createdAt: now,
        rule: refusal.rule,
        code: refusal.code,
        purpose: verifyPurpose(service.sid),
        userId: service.sid,
        country: phone === null ? null : (phone.country ?? `+${phone.callingCode}`),
        phonePrefix: phone === null ? null : numberPrefix(phone.e164),
        ip: request.deviceIp,
      }),
    );
    this.#o.metrics?.refused(admitted.refusal.rule);
    this.#o.log.info(
      { event: "verify.refused", service: service.sid, to: mask(to), rule: admitted.refusal.rule, errorCode: admitted.refusal.code },
      "verification refused",
    );
    throw refusalError(admitted.refusal, extra, phone);
  }

  async #serviceBuckets(service: VerifyServiceRecord, values: Readonly<Record<string, string>>): Promise<Bucket[]> {
    const names = Object.keys(values);
    const buckets = await guard(this.#o.store.bucketsOf(service.sid, names));
    const unknown = names.find((name) => !buckets.some((bucket) => bucket.uniqueName === name));
    if (unknown !== undefined) throw invalidParameter("RateLimits", `The service has no rate limit named ${JSON.stringify(unknown)}.`);
    return buckets.map((bucket) => ({
      key: `verify:${bucket.sid}:${values[bucket.uniqueName]}`,
      limit: bucket.max,
      windowMs: bucket.interval * 1000,
      rule: `rate_limit:${bucket.rateLimitSid}`,
    }));
  }

  /** The store's step; what protection took goes back when it refuses or fails. */
  async #open(
    service: VerifyServiceRecord,
    s: { to: string; channelName: string; now: number; fresh: StartInput["fresh"]; attempt: AttemptRow },
    admitted: { taken: Bucket[]; hold: BudgetHold | null },
  ) {
    const giveBack = () => guardLimiter(this.#o.protection.giveBackAppSend(admitted.taken, admitted.hold, s.now));
    const input = {
      serviceSid: service.sid,
      to: s.to,
      channel: s.channelName,
      now: s.now,
      fresh: s.fresh,
      maxSends: VERIFY_RULES.maxSends,
      attempt: s.attempt,
    };
    try {
      const started = await guard(this.#o.store.startVerification(input));
      if (started.kind === "max_sends") await giveBack();
      return started;
    } catch (error) {
      await giveBack().catch(() => {});
      throw error;
    }
  }

  /** The message through its channel; the attempt's row, the breaker and the budget learn how it went. */
  async #deliver(
    service: VerifyServiceRecord,
    verification: VerificationRecord,
    request: StartRequest,
    d: { channel: Channel; attemptSid: string; code: string; phone: PhoneInfo | null; hold: BudgetHold | null; now: number },
  ): Promise<void> {
    const { channel, code } = d;
    const locale = verification.locale ?? "en";
    const friendlyName = request.customFriendlyName ?? service.friendlyName;
    const doNotShare = service.settings.do_not_share_warning_enabled === true;
    const body =
      channel.name === "voice"
        ? verifySpoken({ locale, friendlyName, code })
        : verifyMessage({ locale, friendlyName, code, doNotShare, appHash: channel.name === "sms" ? request.appHash : null });
    const started = performance.now();
    const outcome = await channel.send({
      to: verification.to,
      body,
      ttlSeconds: VERIFY_RULES.ttlMs / 1000,
      reference: d.attemptSid,
      deadline: Date.now() + this.#o.sendTimeoutMs,
      code,
      locale,
      purpose: "login",
      ...(request.sender === null || channel.name !== "email" ? {} : { sender: request.sender }),
    });
    await guard(this.#o.codes.updateDelivery(d.attemptSid, deliveryUpdate(outcome), this.#o.clock.now().getTime()));
    if (outcome.ok && d.phone !== null) await guardLimiter(this.#o.protection.noteSent(d.phone, d.now));
    const spent = spentOn(outcome, d.hold?.micros ?? 0);
    await guard(this.#o.protection.settle(d.hold, d.attemptSid, spent, d.now));
    this.#o.metrics?.sent(channel.name, outcome.ok ? "sent" : outcome.kind, (performance.now() - started) / 1000, spent?.micros ?? null);
    const audit = {
      event: "verify.send",
      service: service.sid,
      sid: verification.sid,
      attempt: d.attemptSid,
      to: mask(verification.to),
      channel: channel.name,
    };
    if (outcome.ok || outcome.kind === "timeout")
      this.#o.log.info({ ...audit, outcome: outcome.ok ? "sent" : "timeout" }, "verification code sent");
    else {
      this.#o.log.warn({ ...audit, outcome: outcome.kind, providerCode: outcome.providerCode }, "verification code not sent");
      throw deliveryError(outcome);
    }
  }

  async #noteVerified(verification: VerificationRecord, now: number): Promise<void> {
    const phone = verification.to.includes("@") ? null : parsePhone(verification.to, null);
    if (phone !== null && !this.#o.testNumbers.has(phone.e164)) await guardLimiter(this.#o.protection.noteVerified(phone, now));
  }
}

/** What a 404's details say of a verification that is no longer pending (a vericode extension). */
function gone(verification: VerificationRecord, now: number): Record<string, unknown> {
  const status = verification.status === "pending" && verification.expiresAt <= now ? "expired" : verification.status;
  return {
    verification_sid: verification.sid,
    status,
    date_updated: new Date(status === "expired" && verification.status === "pending" ? verification.expiresAt : verification.updatedAt)
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z"),
  };
}

function numberType(phone: PhoneInfo): string {
  const type = phone.type ?? "UNKNOWN";
  if (type === "MOBILE" || type === "FIXED_LINE_OR_MOBILE") return "mobile";
  if (type === "FIXED_LINE") return "landline";
  if (type === "VOIP") return "voip";
  return type.toLowerCase();
}

/** A send the provider refused at once: Twilio's code for it. The verification stays pending. */
function deliveryError(outcome: Extract<DeliveryOutcome, { ok: false }>): VerifyError {
  if (outcome.kind === "invalid_number") return invalidParameter("To", "The provider says this is not a valid phone number.");
  if (outcome.kind === "rejected") {
    return new VerifyError(60410, 403, "Verification delivery attempt blocked", {
      details: { reason: "The provider cannot deliver to this number (a landline, opted out, or a blocked region)." },
    });
  }
  return new VerifyError(20503, 503, "Service unavailable", {
    retryAfter: 5,
    details: { reason: "The messaging provider failed to send the code. Try again shortly." },
  });
}

/** vericode's refusals in Twilio's codes (docs/twilio-verify.md). */
function refusalError(refusal: Refusal, serviceBuckets: readonly Bucket[], phone: PhoneInfo | null): VerifyError {
  const details = { reason: refusal.message, rule: refusal.rule };
  const retry = refusal.retryAfter === undefined ? {} : { retryAfter: refusal.retryAfter };
  switch (refusal.rule) {
    case "number":
      return new VerifyError(60212, 429, "Too many concurrent requests for phone number", { ...retry, details });
    case "country":
      return new VerifyError(60605, 403, "Verification delivery attempt blocked", { details });
    case "number_type":
      // Twilio's 60205 is a landline's; the other refused types (premium rate, pager…) are blocked destinations.
      return phone?.type === "FIXED_LINE"
        ? new VerifyError(60205, 403, "SMS is not supported by landline phone number", { details })
        : new VerifyError(60410, 403, "Verification delivery attempt blocked", { details });
    case "prefix_blocked":
    case "conversion_breaker":
      return new VerifyError(60410, 403, "Verification delivery attempt blocked", { ...retry, details });
    default: {
      const limit = serviceBuckets.find((bucket) => bucket.rule === refusal.rule);
      const headers: Record<string, string> =
        limit === undefined ? {} : { "twilio-reached-rate-limit": limit.rule.slice("rate_limit:".length) };
      return tooManyRequests(refusal.retryAfter, refusal.message, headers);
    }
  }
}

function mask(to: string): string {
  return to.includes("@") ? to.replace(/^[^@]{0,3}[^@]*@/, (local) => `${local.slice(0, 1)}***@`) : maskPhone(to);
}

const guard = failClosed("database");
const guardLimiter = failClosed("rate limiter");
