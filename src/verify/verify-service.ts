import type { CountryCode } from "libphonenumber-js/max";
import { LRUCache } from "lru-cache";
import type { Channel, ChannelName } from "../channels/channel.js";
import type { Clock } from "../clock.js";
import { normaliseEmail } from "../email.js";
import { failClosed } from "../errors.js";
import { COUNTRY_LANGUAGE } from "../i18n/templates.js";
import { newId } from "../ids.js";
import type { Bucket } from "../limits/limiter.js";
import { limitRefusal, numberPrefix, type Protection, type Refusal } from "../limits/protection.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { deliveryUpdate, spentOn } from "../otp/delivery.js";
import { invalidNumberReason, maskPhone, type PhoneInfo, parsePhone } from "../phone.js";
import { type OtpKey, verifyPurpose } from "../records.js";
import type { BudgetHold, CodeStore } from "../store/store.js";
import type { Checked, SendAttempt, Started, VerificationRecord, VerifyServiceRecord, VerifyStore } from "../store/verify-store.js";
import { sameCode, VerifyCodes } from "./code.js";
import { deliveryError, invalidParameter, notFound, refusalError, serviceLimitReason, tooManyRequests, VerifyError } from "./errors.js";
import { twilioDate } from "./format.js";
import type { CheckRequest, StartRequest } from "./requests.js";
import { settingsOf } from "./settings.js";
import { newSid } from "./sids.js";
import { verifyLocale, verifyMessage, verifySpoken } from "./templates.js";

/** Twilio Verify's fixed rules (https://twilio.com/docs/verify/api/rate-limits-and-timeouts). */
export const VERIFY_RULES = { ttlMs: 10 * 60 * 1000, maxSends: 5, maxChecks: 5 } as const;

/** Twilio's channels, and the vericode channel each travels by (`auto` is an SMS). */
const CHANNELS: ReadonlyMap<string, ChannelName> = new Map([
  ["sms", "sms"],
  ["call", "voice"],
  ["whatsapp", "whatsapp"],
  ["email", "email"],
  ["auto", "sms"],
]);

/**
 * How long a service read from the store is trusted: every start and check needs its service, which
 * changes rarely. A change made through another instance is seen here within this time.
 */
const SERVICE_FRESH_MS = 1000;

/** A check's outcome as the metric of verifications counts it (the native API's words). */
const CHECK_OUTCOME: Record<Checked["kind"], string> = {
  approved: "verified",
  mismatch: "invalid",
  max_checks: "attempts_exceeded",
  not_found: "not_found",
  limited: "rate_limited",
};

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

/** A verification as the API shows it: its record, its sends, and the number's type when lookup is on. */
export interface VerificationView {
  verification: VerificationRecord;
  attempts: SendAttempt[];
  lookup: { type: string } | null;
}

/** Where a start goes: its address, the number read (null for email), its channel and language. */
interface Target {
  to: string;
  phone: PhoneInfo | null;
  channel: Channel;
  locale: string;
}

/** What protection took for a send: given back when nothing goes out. */
interface Taken {
  /** Taken by protection (a limiter elsewhere, or with the budget's hold): given back here when nothing is sent. */
  buckets: Bucket[];
  /** For the store to take with the send, all or nothing (Protection.admitAppSend's `take`); it gives them back itself. */
  take: Bucket[];
  hold: BudgetHold | null;
}

/** One send being made: the service, the request, where it goes, what it took and the attempt's sid. */
interface Sending {
  service: VerifyServiceRecord;
  request: StartRequest;
  target: Target;
  taken: Taken;
  attemptSid: string;
  now: number;
}

/**
 * Twilio Verify v2's behaviour on vericode's store, channels and protection: a verification lives ten
 * minutes, resends the same code (derived, never stored) at most five times, takes at most five checks,
 * and is gone (404) once approved, canceled, expired or out of checks.
 */
export class VerifyService {
  readonly #o: VerifyServiceOptions;
  readonly #codes: VerifyCodes;
  /** Services read in the last SERVICE_FRESH_MS (see there). */
  readonly #services = new LRUCache<string, VerifyServiceRecord>({ max: 1000, ttl: SERVICE_FRESH_MS });

  constructor(options: VerifyServiceOptions) {
    this.#o = options;
    this.#codes = new VerifyCodes(options.keys);
  }

  get store(): VerifyStore {
    return this.#o.store;
  }

  /** The service `sid` names, or 20404 for `path`. */
  async service(sid: string, path: string): Promise<VerifyServiceRecord> {
    const cached = this.#services.get(sid);
    if (cached !== undefined) return cached;
    const service = await guard(this.#o.store.getService(sid));
    if (service === null) throw notFound(path);
    this.#services.set(sid, service);
    return service;
  }

  /** Stores a changed service; false when it is gone. */
  async updateService(service: VerifyServiceRecord): Promise<boolean> {
    this.#services.delete(service.sid);
    return guard(this.#o.store.updateService(service));
  }

  /** Deletes a service, its rate limits and buckets; its pending verifications end. */
  async deleteService(sid: string): Promise<boolean> {
    this.#services.delete(sid);
    return guard(this.#o.store.deleteService(sid, this.#o.clock.now().getTime()));
  }

  /** Starts a verification, or sends the pending one's code again (same sid, same code). */
  async start(service: VerifyServiceRecord, request: StartRequest): Promise<VerificationView> {
    const channelName = CHANNELS.get(request.channel);
    if (channelName === undefined) {
      throw invalidParameter(
        "Channel",
        `Channel must be sms, call, whatsapp, email or auto; ${JSON.stringify(request.channel)} is not offered.`,
      );
    }
    const channel = this.#o.channels.get(channelName);
    if (channel === undefined) throw invalidParameter("Channel", `The ${request.channel} channel is not configured on this service.`);
    const { to, phone } = this.#destination(request.to, channelName);
    const settings = settingsOf(service);
    // Twilio's SkipSmsToLandlines needs the service's lookup: the number's type comes from it.
    if (settings.lookupEnabled && settings.skipSmsToLandlines && channelName === "sms" && phone?.type === "FIXED_LINE") {
      throw new VerifyError(60205);
    }
    const target = { to, phone, channel, locale: this.#locale(request, phone) };
    // A pending verification whose key left OTP_SECRETS ends on its first send; the second opens a new one.
    const sent = (await this.#send(service, request, target)) ?? (await this.#send(service, request, target));
    if (sent === null)
      throw new VerifyError(20503, { retryAfter: 1, details: { reason: "The verification could not be started. Try again." } });
    return sent;
  }

  /** One send: admit, open (a new verification or the pending one), deliver; null when the pending one had to end. */
  async #send(service: VerifyServiceRecord, request: StartRequest, target: Target): Promise<VerificationView | null> {
    const now = this.#o.clock.now().getTime();
    const fixedCode = this.#o.testNumbers.get(target.to);
    const taken = fixedCode === undefined ? await this.#admit(service, target, request, now) : { buckets: [], take: [], hold: null };
    const sending: Sending = { service, request, target, taken, attemptSid: newSid("VL", now), now };
    const started = await this.#open(sending, fixedCode !== undefined);
    if (started.kind === "limited") {
      const refusal = limitRefusal(started.rule, started.retryAfterMs);
      return this.#refuse(service, target, request, refusal, taken.take, now);
    }
    const { verification } = started;
    const code = fixedCode ?? this.#codes.code(verification);
    if (code === null) {
      await this.#endKeyless(sending, verification, started.kind === "started");
      return null;
    }
    if (started.kind === "max_sends") throw new VerifyError(60203);
    if (fixedCode !== undefined)
      await guard(this.#o.codes.updateDelivery(sending.attemptSid, { status: "sent", deliveryStatus: "not_sent" }, now));
    else await this.#deliver(sending, verification, code);
    // A new verification's one send is this one: nothing to read back.
    if (verification.sendCount > 1) return this.view(service, verification);
    const attempts = [{ sid: sending.attemptSid, channel: fixedCode === undefined ? target.channel.name : "test", createdAt: now }];
    return { verification, attempts, lookup: this.#lookup(service, verification) };
  }

  /**
   * The store's step. What protection took goes back once, whatever happens: when the store fails, or
   * when it refuses the send (the verification's five sends are spent).
   */
  async #open(sending: Sending, testNumber: boolean): Promise<Started> {
    const { service, target, taken, now } = sending;
    const phone = target.phone;
    const input = {
      serviceSid: service.sid,
      to: target.to,
      channel: target.channel.name,
      now,
      fresh: {
        sid: newSid("VE", now),
        ...this.#codes.fresh(),
        codeLength: service.codeLength,
        locale: target.locale,
        expiresAt: now + VERIFY_RULES.ttlMs,
      },
      maxSends: VERIFY_RULES.maxSends,
      take: taken.take,
      attempt: {
        sid: sending.attemptSid,
        // A test number's code is never sent: its row says so, as the native API's do.
        channel: testNumber ? "test" : target.channel.name,
        country: phone === null ? null : (phone.country ?? `+${phone.callingCode}`),
        priceMicros: taken.hold?.micros ?? null,
      },
    };
    let started: Started;
    try {
      started = await guard(this.#o.store.startVerification(input));
    } catch (error) {
      await this.#giveBack(taken, now);
      throw error;
    }
    if (started.kind !== "started") await this.#giveBack(taken, now);
    return started;
  }

  async #giveBack(taken: Taken, now: number): Promise<void> {
    await this.#o.protection.giveBackAppSend(taken.buckets, taken.hold, now).catch((cause: unknown) => {
      this.#o.log.error({ event: "verify.give_back", err: cause }, "the limiter's units or the budget's hold could not be given back");
    });
  }

  /**
   * A pending verification whose key was removed from OTP_SECRETS can never be checked: it ends
   * (`canceled`), the send opened on it is marked failed, and what protection took goes back.
   */
  async #endKeyless(sending: Sending, verification: VerificationRecord, opened: boolean): Promise<void> {
    const { service, taken, now } = sending;
    this.#o.log.warn(
      { event: "verify.key_removed", sid: verification.sid, keyId: verification.keyId },
      "a pending verification's key is gone: it ends",
    );
    try {
      if (opened) {
        const failed = { status: "failed" as const, providerErrorCode: "key_removed", deliveryStatus: "not_sent" };
        await guard(this.#o.codes.updateDelivery(sending.attemptSid, failed, now));
      }
      await guard(this.#o.store.endVerification(service.sid, verification.sid, "canceled", now));
    } finally {
      // A max_sends refusal gave its units back already (#open); the store's `take` was this send's.
      if (opened) {
        await this.#giveBack({ buckets: [...taken.buckets, ...taken.take], take: [], hold: null }, now);
        await guard(this.#o.protection.settle(taken.hold, sending.attemptSid, null, now));
      }
    }
  }

  /** The message through its channel; the attempt's row, the breaker and the budget learn how it went. */
  async #deliver(sending: Sending, verification: VerificationRecord, code: string): Promise<void> {
    const { service, request, target, taken, attemptSid, now } = sending;
    const { channel, phone } = target;
    const locale = verification.locale ?? "en";
    const friendlyName = request.customFriendlyName ?? service.friendlyName;
    const body =
      channel.name === "voice"
        ? verifySpoken({ locale, friendlyName, code })
        : verifyMessage({
            locale,
            friendlyName,
            code,
            doNotShare: settingsOf(service).doNotShareWarningEnabled,
            appHash: channel.name === "sms" ? request.appHash : null,
          });
    const started = performance.now();
    const outcome = await channel.send({
      to: verification.to,
      body,
      ttlSeconds: VERIFY_RULES.ttlMs / 1000,
      reference: attemptSid,
      deadline: Date.now() + this.#o.sendTimeoutMs,
      code,
      locale,
      // No channel words a /v2 message by purpose: the body is the whole text.
      purpose: "login",
      ...(request.sender === null || channel.name !== "email" ? {} : { sender: request.sender }),
    });
    // The answer and the breaker's count together: one group commit, as a native send's (otp-service.ts).
    await Promise.all([
      guard(this.#o.codes.updateDelivery(attemptSid, deliveryUpdate(outcome), this.#o.clock.now().getTime())),
      outcome.ok && phone !== null ? guardLimiter(this.#o.protection.noteSent(phone, now)) : null,
    ]);
    const spent = spentOn(outcome, taken.hold?.micros ?? 0);
    await guard(this.#o.protection.settle(taken.hold, attemptSid, spent, now));
    this.#o.metrics?.sent(channel.name, outcome.ok ? "sent" : outcome.kind, (performance.now() - started) / 1000, spent?.micros ?? null);
    const delivered = outcome.ok || outcome.kind === "timeout";
    // One line, written out whole (a leading spread such as `{ ...audit, outcome }` costs about a
    // microsecond a field on the hot path, docs/benchmarks.md "Memory"); pino leaves out undefined fields.
    const line = {
      event: "verify.send",
      service: service.sid,
      sid: verification.sid,
      attempt: attemptSid,
      to: mask(verification.to),
      channel: channel.name,
      outcome: outcome.ok ? "sent" : outcome.kind,
      providerCode: delivered || outcome.ok ? undefined : outcome.providerCode,
    };
    if (delivered) {
      this.#o.log.info(line, "verification code sent");
      return;
    }
    this.#o.log.warn(line, "verification code not sent");
    throw deliveryError(outcome);
  }

  /** Checks a code against the pending verification of `To`, or the one `VerificationSid` names. */
  async check(service: VerifyServiceRecord, request: CheckRequest, path: string): Promise<VerificationRecord> {
    const now = this.#o.clock.now().getTime();
    const target = "to" in request.target ? { to: this.#checkAddress(request.target.to) } : request.target;
    const take = await this.#admitCheck(service, target, now, path);
    const matches = (v: VerificationRecord) => sameCode(request.code, this.#o.testNumbers.get(v.to) ?? this.#codes.code(v));
    const checked = await guard(this.#o.store.checkVerification(service.sid, target, now, VERIFY_RULES.maxChecks, matches, take));
    this.#o.metrics?.verified(CHECK_OUTCOME[checked.kind]);
    if (checked.kind === "limited") throw tooManyChecks(checked.retryAfterMs);
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
        throw new VerifyError(60202);
      case "approved":
        await this.#noteVerified(checked.verification, now);
        return checked.verification;
      default:
        return checked.verification;
    }
  }

  /**
   * RATE_LIMIT_VERIFY per destination, as on the native API: guesses at one number stay bounded however
   * many verifications are started for it. Test numbers are not limited. Answers the units the store takes
   * with the check (none when a limiter elsewhere took them here).
   */
  async #admitCheck(
    service: VerifyServiceRecord,
    target: { to: string } | { sid: string },
    now: number,
    path: string,
  ): Promise<readonly Bucket[]> {
    let to: string;
    if ("to" in target) to = target.to;
    else {
      const known = await guard(this.#o.store.getVerification(service.sid, target.sid));
      if (known === null) throw notFound(path);
      to = known.to;
    }
    if (this.#o.testNumbers.has(to)) return [];
    const admitted = await guardLimiter(this.#o.protection.admitAppTry(to, now));
    if (admitted.ok) return admitted.take;
    this.#o.metrics?.verified("rate_limited");
    throw tooManyChecks(admitted.retryAfterMs);
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
    return { verification, attempts, lookup: this.#lookup(service, verification) };
  }

  /** The number's type, when the service's lookup is on. */
  #lookup(service: VerifyServiceRecord, verification: VerificationRecord): { type: string } | null {
    const phone = settingsOf(service).lookupEnabled ? parsePhone(verification.to, null) : null;
    return phone === null ? null : { type: numberType(phone) };
  }

  /** `To`, read for its channel: E.164 for a phone channel, an address for email. */
  #destination(given: string, channel: ChannelName): { to: string; phone: PhoneInfo | null } {
    if (channel === "email") {
      const address = normaliseEmail(given);
      if (address === null) throw invalidParameter("To", "To must be an email address for the email channel.");
      return { to: address, phone: null };
    }
    const phone = given.startsWith("+") ? parsePhone(given, null) : null;
    if (phone === null) {
      // A well-formed number that is not a valid one is told apart from a malformed one: the fix differs.
      const why = invalidNumberReason(given);
      throw invalidParameter(
        "To",
        why === null
          ? "To must be a phone number in E.164 format, such as +50688887777."
          : `${given.replace(/[\s().-]/g, "")} is not a valid phone number: ${why}.`,
      );
    }
    return { to: phone.e164, phone };
  }

  /** A check's `To` as a start stores it: E.164 (no national form, as a start takes none), or an address. */
  #checkAddress(given: string): string {
    if (given.includes("@")) return normaliseEmail(given) ?? given;
    return (given.startsWith("+") ? parsePhone(given, null)?.e164 : undefined) ?? given;
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

  /**
   * vericode's protection, in Twilio's codes; the service's rate limits named in `RateLimits` too. A
   * refusal is kept as the native API keeps one: the reports count it under the service.
   */
  async #admit(service: VerifyServiceRecord, target: Target, request: StartRequest, now: number): Promise<Taken> {
    const { to, phone } = target;
    const extra = await this.#serviceBuckets(service, request.rateLimits);
    const admitted = await guardLimiter(this.#o.protection.admitAppSend(to, phone, request.deviceIp, extra, now));
    if (admitted.ok) return { buckets: admitted.taken, take: admitted.take, hold: admitted.hold };
    return this.#refuse(service, target, request, admitted.refusal, extra, now);
  }

  /** A refusal, kept as the native API keeps one (the reports count it under the service), then thrown in Twilio's code. */
  async #refuse(
    service: VerifyServiceRecord,
    target: Target,
    request: StartRequest,
    refusal: Refusal,
    buckets: readonly Bucket[],
    now: number,
  ): Promise<never> {
    const { to, phone } = target;
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
    this.#o.metrics?.refused(refusal.rule);
    this.#o.log.info(
      { event: "verify.refused", service: service.sid, to: mask(to), rule: refusal.rule, errorCode: refusal.code },
      "verification refused",
    );
    throw refusalError(refusal, serviceLimitOf(refusal, buckets), phone);
  }

  /** The buckets of the rate limits a start's `RateLimits` names, each counting its value. */
  async #serviceBuckets(service: VerifyServiceRecord, values: Readonly<Record<string, string>>): Promise<ServiceBucket[]> {
    const names = Object.keys(values);
    if (names.length === 0) return [];
    const buckets = await guard(this.#o.store.bucketsOf(service.sid, names));
    const unknown = names.find((name) => !buckets.some((bucket) => bucket.uniqueName === name));
    if (unknown !== undefined) throw invalidParameter("RateLimits", `The service has no rate limit named ${JSON.stringify(unknown)}.`);
    return buckets.map((bucket) => ({
      key: `verify:${bucket.sid}:${values[bucket.uniqueName]}`,
      limit: bucket.max,
      windowMs: bucket.interval * 1000,
      rule: `${SERVICE_LIMIT}${bucket.rateLimitSid}`,
      uniqueName: bucket.uniqueName,
    }));
  }

  async #noteVerified(verification: VerificationRecord, now: number): Promise<void> {
    const phone = verification.to.includes("@") ? null : parsePhone(verification.to, null);
    if (phone !== null && !this.#o.testNumbers.has(phone.e164)) await guardLimiter(this.#o.protection.noteVerified(phone, now));
  }
}

/** The rule a service's own rate limit refuses under: this, then the limit's RK sid. */
const SERVICE_LIMIT = "rate_limit:";

/** A bucket of a service's rate limit, with the limit's unique name, for the words of its refusal. */
interface ServiceBucket extends Bucket {
  readonly uniqueName: string;
}

function isServiceBucket(bucket: Bucket): bucket is ServiceBucket {
  return typeof (bucket as Partial<ServiceBucket>).uniqueName === "string";
}

/**
 * The service's own rate limit a refusal names, in Twilio's header (its sid) and in words: what its
 * buckets allow and when to retry, with its unique name when the start's buckets carry it.
 */
function serviceLimitOf(refusal: Refusal, buckets: readonly Bucket[]): { sid: string; reason: string } | null {
  if (!refusal.rule.startsWith(SERVICE_LIMIT)) return null;
  const sid = refusal.rule.slice(SERVICE_LIMIT.length);
  const own = buckets.filter((bucket) => bucket.rule === refusal.rule);
  const uniqueName = own.find(isServiceBucket)?.uniqueName ?? null;
  return { sid, reason: serviceLimitReason(sid, uniqueName, own, refusal.retryAfter) };
}

/** What a 404's details say of a verification that is no longer pending (a vericode extension). */
function gone(verification: VerificationRecord, now: number): Record<string, unknown> {
  const expired = verification.status === "pending" && verification.expiresAt <= now;
  return {
    verification_sid: verification.sid,
    status: expired ? "expired" : verification.status,
    date_updated: twilioDate(expired ? verification.expiresAt : verification.updatedAt),
  };
}

function numberType(phone: PhoneInfo): string {
  const type = phone.type ?? "UNKNOWN";
  if (type === "MOBILE" || type === "FIXED_LINE_OR_MOBILE") return "mobile";
  if (type === "FIXED_LINE") return "landline";
  if (type === "VOIP") return "voip";
  return type.toLowerCase();
}

function mask(to: string): string {
  return to.includes("@") ? to.replace(/^[^@]*@/, (local) => `${local.slice(0, 1)}***@`) : maskPhone(to);
}

const guard = failClosed("database");
const guardLimiter = failClosed("rate limiter");

/** 20429 for a check over RATE_LIMIT_VERIFY. */
function tooManyChecks(retryAfterMs: number): VerifyError {
  return tooManyRequests(Math.max(1, Math.ceil(retryAfterMs / 1000)), "Too many checks for this number (RATE_LIMIT_VERIFY).");
}
