import type { CountryCode } from "libphonenumber-js/max";
import type { Channel, ChannelName, DeliveryOutcome } from "../channels/channel.js";
import type { Clock } from "../clock.js";
import { normaliseEmail } from "../email.js";
import { VericodeError } from "../errors.js";
import type { Messages } from "../i18n/messages.js";
import { newId } from "../ids.js";
import { type Bucket, BucketFull } from "../limits/limiter.js";
import { numberPrefix, type Protection, type Refusal, type Reservation } from "../limits/protection.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { maskPhone, type PhoneInfo, parsePhone } from "../phone.js";
import type { Prelude, Store, VerifyTry } from "../store/store.js";
import { findMatchingHash, generateCode, hashCode } from "./code.js";
import {
  cooldownMs,
  LIVE_CODES_PER_CHALLENGE,
  noTryReason,
  type OtpRules,
  secondsUntil,
  sendRefusal,
  sendsToMaxCooldown,
} from "./policy.js";
import { type ChallengeKey, isPurpose, type OtpRecord, type SendResult, type UserRef, type VerifyResult } from "./types.js";

export interface OtpServiceOptions {
  store: Store;
  /** The configured channels by name; `sms` at least. */
  channels: ReadonlyMap<ChannelName, Channel>;
  /** CHANNEL_FALLBACK: after a channel in this list is refused or fails, the ones after it are tried. */
  fallback: readonly ChannelName[];
  clock: Clock;
  log: Logger;
  secret: string;
  codeLength: number;
  rules: OtpRules;
  defaultCountry: CountryCode | null;
  /** E.164 → fixed code: never sent, no cooldown, no lock. */
  testNumbers: ReadonlyMap<string, string>;
  /** Deadline of one provider call. */
  sendTimeoutMs: number;
  protection: Protection;
  messages: Messages;
  /** Counts sends, verifications, refusals and spend for `/metrics`. */
  metrics?: Metrics;
}

/** What the caller knows of the request behind a send. */
export interface SendContext {
  /** The client's address, for the per-address limit (taken from X-Forwarded-For only behind TRUSTED_PROXIES). */
  ip?: string | null;
  /** The language asked for (`es-CR`); else Accept-Language, else the number's country, else DEFAULT_LOCALE. */
  locale?: string | null;
  /** The request's Accept-Language header. */
  acceptLanguage?: string | null;
  /** How the code travels. @default "sms" */
  channel?: ChannelName;
}

/** The verification outcome a metric counts, by the result's code. */
const VERIFY_OUTCOME: Partial<Record<string, string>> = {
  otp_invalid: "invalid",
  otp_expired: "expired",
  otp_attempts_exceeded: "attempts_exceeded",
  otp_not_found: "not_found",
  rate_limited: "rate_limited",
  invalid_phone_number: "invalid_number",
};

/**
 * Sends and verifies one-time codes. Expected outcomes (wrong code, cooldown, provider refusal) resolve
 * as values; it throws VericodeError for misuse (a bad purpose) and when the database fails.
 */
export class OtpService {
  readonly #o: OtpServiceOptions;

  constructor(options: OtpServiceOptions) {
    this.#o = options;
  }

  /**
   * Sends a new code for (phone, user, purpose), as the seed's `send_otp(phone, user, purpose)`. The
   * protection rules run first (docs/protection.md); `context.ip` feeds the per-address limit.
   */
  async sendOtp(phone: string, user: UserRef, purpose: string, context: SendContext = {}): Promise<SendResult> {
    const { store, clock, rules, protection } = this.#o;
    const channelName = context.channel ?? "sms";
    const target = this.#challenge(phone, user, purpose, channelName === "email");
    if ("invalid" in target) return { ...invalidDestination(target.invalid, phone), id: null };
    const { key, phone: number } = target;
    const channel = this.#o.channels.get(channelName);
    if (channel === undefined) {
      return { ok: false, code: "channel_unavailable", message: `The ${channelName} channel is not configured on this service.`, id: null };
    }
    const fixedCode = this.#o.testNumbers.get(key.phoneNumber);
    const now = clock.now().getTime();
    const ip = context.ip ?? null;

    // Test numbers are never sent: no limit, no rule and no budget applies to them.
    let buckets: Bucket[] = [];
    let prelude: Prelude | null = null;
    let reservation: Reservation | null = null;
    if (fixedCode === undefined) {
      // The destination rules and the breaker are about phone numbers; an email address has its limits.
      const early = number === null ? null : (protection.destination(number) ?? (await guardLimiter(protection.breaker(number, now))));
      if (early !== null) return this.#refuse(early, key, number, ip, now);
      buckets = protection.sendBuckets(key, number, ip);
      // A limiter in this very database counts inside the send's own transaction (one commit); any other
      // counts first, on its own.
      prelude = protection.limiter.stepsFor?.(buckets, now, store) ?? null;
      if (prelude === null) {
        const consumed = await guardLimiter(protection.limiter.consume(buckets, now));
        if (!consumed.ok) return this.#refuse(limitRefusal(consumed.rule, consumed.retryAfterMs, now), key, number, ip, now);
      }
      // Email costs nothing per message: only SMS, WhatsApp and calls draw on the budget.
      const reserved = number === null ? { ok: true as const, reservation: null } : await guard(protection.reserve(number, now));
      if (!reserved.ok) {
        if (prelude === null) await guardLimiter(protection.limiter.release(buckets, now));
        return this.#refuse(reserved.refusal, key, number, ip, now);
      }
      reservation = reserved.reservation;
    }

    const expiresAt = now + rules.ttlSeconds * 1000;
    const code = fixedCode ?? generateCode(this.#o.codeLength);
    const id = newId("otp", now);
    const record: OtpRecord = {
      ...key,
      id,
      codeHash: hashCode(this.#o.secret, key, code),
      channel: fixedCode === undefined ? channel.name : "test",
      // A test number's code is never sent: it is live at once.
      status: fixedCode === undefined ? "pending" : "sent",
      createdAt: now,
      expiresAt,
      verifiedAt: null,
      providerMessageId: null,
      providerErrorCode: null,
      deliveryStatus: fixedCode === undefined ? null : "not_sent",
      country: number === null ? null : (number.country ?? `+${number.callingCode}`),
      priceMicros: reservation?.micros ?? null,
      priceFinal: false,
      fallbackFrom: null,
    };
    let opened: { attempts: number; sendCount: number } | null;
    try {
      opened = await guard(
        store.beginSend(
          record,
          now,
          {
            baseCooldownMs: rules.resendCooldownSeconds * 1000,
            maxCooldownMs: Math.max(rules.resendCooldownSeconds, rules.resendCooldownMaxSeconds) * 1000,
            sendsToMax: sendsToMaxCooldown(rules),
            exempt: fixedCode !== undefined,
            keepLive: LIVE_CODES_PER_CHALLENGE,
          },
          prelude ?? undefined,
        ),
      );
    } catch (error) {
      if (!(error instanceof BucketFull)) throw error;
      // A limit refused inside the send's transaction: nothing was taken; the budget's reservation goes back.
      await guard(protection.settle(reservation, id, null, now));
      return this.#refuse(limitRefusal(error.rule, error.retryAfterMs, now), key, number, ip, now);
    }
    if (opened === null) {
      // Refused by the challenge's own cooldown or lock: what the limits and the budget took goes back
      // (a prelude's units went back with the transaction).
      if (prelude === null) await guardLimiter(protection.limiter.release(buckets, now));
      await guard(protection.settle(reservation, id, null, now));
      const state = await guard(store.getChallenge(key));
      const refusal = state === null ? { reason: "cooldown", retryAfter: 1 } : sendRefusal(state, rules, now);
      const message =
        refusal.reason === "locked"
          ? `Too many wrong codes for this number. Try again in ${refusal.retryAfter} seconds.`
          : `A code was sent moments ago. You can ask for another in ${refusal.retryAfter} seconds.`;
      return this.#refuse({ code: "rate_limited", rule: refusal.reason, message, retryAfter: refusal.retryAfter }, key, number, ip, now);
    }
    const resendAfter = new Date(now + cooldownMs(opened.sendCount, rules));
    const sent = { ok: true as const, id, message: "Code sent.", expiresAt: new Date(expiresAt), resendAfter };
    if (fixedCode !== undefined) return sent;

    const locale = this.#o.messages.resolve({
      requested: context.locale ?? null,
      acceptLanguage: context.acceptLanguage ?? null,
      country: number?.country ?? null,
    });
    const message = {
      to: key.phoneNumber,
      // The WebOTP line belongs to text messages only.
      body:
        channel.name === "email" || channel.name === "voice"
          ? this.#o.messages.text(locale, key.purpose, code, rules.ttlSeconds)
          : this.#o.messages.sms(locale, key.purpose, code, rules.ttlSeconds),
      ttlSeconds: rules.ttlSeconds,
      reference: id,
      deadline: Date.now() + this.#o.sendTimeoutMs,
      code,
      locale,
      purpose: key.purpose,
    };
    let used = channel;
    const started = performance.now();
    let outcome = await used.send(message);
    // CHANNEL_FALLBACK: a refusal or failure at send time tries the next channel; a timeout or a throttle
    // does not (the first message may still arrive).
    for (const next of this.#fallbacks(channel.name)) {
      if (outcome.ok || (outcome.kind !== "rejected" && outcome.kind !== "failed")) break;
      this.#o.log.warn(
        { event: "otp.fallback", id, from: used.name, to: next.name, providerCode: outcome.providerCode },
        `${used.name} failed: trying ${next.name}`,
      );
      used = next;
      outcome = await used.send(message);
    }
    if (used !== channel)
      await guard(this.#o.store.updateDelivery(id, { status: "pending", channel: used.name, fallbackFrom: channel.name }, Date.now()));
    // The delivery answer and the breaker's count of a sent code are given together: with the limiter in
    // the database they share one group commit.
    await Promise.all([
      guard(this.#record(id, outcome)),
      outcome.ok && number !== null ? guardLimiter(protection.noteSent(number, now)) : null,
    ]);
    // A refused or failed message cost nothing; a timed-out one may have gone out and is counted.
    const spent =
      outcome.ok && outcome.priceMicros != null
        ? { micros: outcome.priceMicros, final: true }
        : outcome.ok || outcome.kind === "timeout"
          ? { micros: reservation?.micros ?? 0, final: false }
          : null;
    await guard(protection.settle(reservation, id, spent, now));
    this.#o.metrics?.sent(used.name, outcome.ok ? "sent" : outcome.kind, (performance.now() - started) / 1000, spent?.micros ?? null);
    const audit = { event: "otp.send", id, to: maskPhone(key.phoneNumber), purpose: key.purpose, channel: used.name };
    if (outcome.ok) {
      this.#o.log.info({ ...audit, outcome: "sent" }, "code sent");
      return sent;
    }
    this.#o.log.warn({ ...audit, outcome: outcome.kind, providerCode: outcome.providerCode }, "code not sent");
    return failure(id, outcome, rules.resendCooldownSeconds);
  }

  async #refuse(refusal: Refusal, key: ChallengeKey, number: PhoneInfo | null, ip: string | null, now: number): Promise<SendResult> {
    await guard(
      this.#o.store.recordRefusal({
        id: newId("ref", now),
        createdAt: now,
        rule: refusal.rule,
        code: refusal.code,
        purpose: key.purpose,
        userId: key.userId,
        country: number === null ? null : (number.country ?? `+${number.callingCode}`),
        phonePrefix: number === null ? null : numberPrefix(number.e164),
        ip,
      }),
    );
    this.#o.metrics?.refused(refusal.rule);
    this.#o.log.info(
      { event: "otp.refused", to: maskPhone(key.phoneNumber), purpose: key.purpose, rule: refusal.rule, code: refusal.code },
      "send refused",
    );
    return {
      ok: false,
      code: refusal.code,
      message: refusal.message,
      id: null,
      rule: refusal.rule,
      ...(refusal.retryAfter === undefined ? {} : { retryAfter: refusal.retryAfter }),
    };
  }

  /** Verifies a code for (phone, user, purpose), as the seed's `verify_otp(phone, code, user, purpose)`. */
  async verifyOtp(phone: string, code: string, user: UserRef, purpose: string): Promise<VerifyResult> {
    const result = await this.#verify(phone, code, user, purpose);
    this.#o.metrics?.verified(result.ok ? "verified" : (VERIFY_OUTCOME[result.code] ?? result.code));
    return result;
  }

  async #verify(phone: string, code: string, user: UserRef, purpose: string): Promise<VerifyResult> {
    const { store, clock, rules, protection } = this.#o;
    const target = this.#challenge(phone, user, purpose, typeof phone === "string" && phone.includes("@"));
    if ("invalid" in target) return invalidDestination(target.invalid, phone);
    const { key, phone: number } = target;
    if (typeof code !== "string") throw new TypeError("code must be a string of digits");
    const now = clock.now().getTime();

    // Tries per number and purpose, counted in the try's own transaction when the limiter shares the database.
    const verifyBuckets = this.#o.testNumbers.has(key.phoneNumber) ? [] : protection.verifyBuckets(key);
    const prelude = protection.limiter.stepsFor?.(verifyBuckets, now, store) ?? null;
    if (prelude === null && verifyBuckets.length > 0) {
      const allowed = await guardLimiter(protection.limiter.consume(verifyBuckets, now));
      if (!allowed.ok) return tooManyTries(allowed.rule, allowed.retryAfterMs, now);
    }

    // One transaction: the try is counted first, atomically, so parallel guesses cannot outrun the
    // budget (the Ory Kratos lesson); then the code is compared in constant time with the live ones.
    const codeHash = hashCode(this.#o.secret, key, code);
    // The breaker's count of a verification joins the try's transaction when the limiter shares the database.
    const onVerified = number === null ? null : protection.verifiedStepsFor(number, now, store);
    let attempt: VerifyTry;
    try {
      attempt = await guard(
        store.tryVerify(
          key,
          now,
          {
            maxAttempts: rules.maxAttempts,
            keepLive: LIVE_CODES_PER_CHALLENGE,
            markPhoneVerified: key.purpose === "registration" && number !== null,
            ...(onVerified === null ? {} : { onVerified }),
          },
          (codes) => {
            const unexpired = codes.filter((record) => record.expiresAt > now);
            return unexpired[
              findMatchingHash(
                codeHash,
                unexpired.map((record) => record.codeHash),
              )
            ];
          },
          prelude ?? undefined,
        ),
      );
    } catch (error) {
      if (!(error instanceof BucketFull)) throw error;
      return tooManyTries(error.rule, error.retryAfterMs, now);
    }
    const audit = { event: "otp.verify", to: maskPhone(key.phoneNumber), purpose: key.purpose };
    if (attempt.kind === "refused") return this.#noTry(key, now);
    if (attempt.kind === "verified") {
      if (number !== null && onVerified === null) await guardLimiter(protection.noteVerified(number, now));
      this.#o.log.info({ ...audit, id: attempt.id, outcome: "verified" }, "code verified");
      return { ok: true, message: "Code verified.", verifiedAt: new Date(now) };
    }
    const { codes } = attempt;
    if (!codes.some((record) => record.expiresAt > now)) {
      return codes.length > 0
        ? { ok: false, code: "otp_expired", message: "The code has expired. Ask for a new one." }
        : { ok: false, code: "otp_not_found", message: "There is no pending code for this number. Ask for a new one." };
    }
    const attemptsRemaining = rules.maxAttempts - attempt.attempts;
    if (attemptsRemaining > 0) {
      this.#o.log.info({ ...audit, outcome: "invalid", attemptsRemaining }, "wrong code");
      return {
        ok: false,
        code: "otp_invalid",
        message: `The code is not valid. ${attemptsRemaining} ${attemptsRemaining === 1 ? "attempt remains" : "attempts remain"}.`,
        attemptsRemaining,
      };
    }
    // The budget is spent: every live code of the challenge dies, and no new one is sent until the
    // newest would have expired, so resending cannot buy more guesses.
    const lockedUntil = Math.max(...codes.map((record) => record.expiresAt));
    await guard(store.lockChallenge(key, lockedUntil, now));
    this.#o.log.warn({ ...audit, outcome: "locked" }, "too many wrong codes: challenge locked");
    return lockedResult(secondsUntil(lockedUntil, now));
  }

  async #noTry(key: ChallengeKey, now: number): Promise<VerifyResult> {
    const reason = noTryReason(await guard(this.#o.store.getChallenge(key)), this.#o.rules, now);
    switch (reason.code) {
      case "otp_attempts_exceeded":
        return lockedResult(reason.retryAfter);
      case "otp_expired":
        return { ok: false, code: "otp_expired", message: "The code has expired. Ask for a new one." };
      default:
        return { ok: false, code: "otp_not_found", message: "There is no pending code for this number. Ask for a new one." };
    }
  }

  /** The channels to try after `name` fails: those after it in CHANNEL_FALLBACK that are configured. */
  #fallbacks(name: ChannelName): Channel[] {
    const at = this.#o.fallback.indexOf(name);
    // A phone number cannot be emailed, nor an address called: email never falls back, nor back to.
    if (at === -1 || name === "email") return [];
    return this.#o.fallback
      .slice(at + 1)
      .filter((next) => next !== "email")
      .map((next) => this.#o.channels.get(next))
      .filter((next): next is Channel => next !== undefined);
  }

  async #record(id: string, outcome: DeliveryOutcome): Promise<void> {
    const now = this.#o.clock.now().getTime();
    if (outcome.ok) {
      await this.#o.store.updateDelivery(
        id,
        {
          status: "sent",
          deliveryStatus: outcome.deliveryStatus,
          ...(outcome.providerMessageId === null ? {} : { providerMessageId: outcome.providerMessageId }),
        },
        now,
      );
    } else if (outcome.kind === "timeout") {
      // The message may have gone out: the code stays valid, and the record says what happened.
      await this.#o.store.updateDelivery(id, { status: "pending", providerErrorCode: outcome.providerCode ?? "timeout" }, now);
    } else {
      await this.#o.store.updateDelivery(id, { status: "failed", providerErrorCode: outcome.providerCode, deliveryStatus: "failed" }, now);
    }
  }

  /** The challenge a send or a try counts against: a phone number in E.164, or a lower-cased email address. */
  #challenge(
    destination: string,
    user: UserRef,
    purpose: string,
    email: boolean,
  ): { key: ChallengeKey; phone: PhoneInfo | null } | { invalid: "phone" | "email" } {
    if (!isPurpose(purpose)) throw new TypeError(`purpose must be registration, login or password_reset (got ${JSON.stringify(purpose)})`);
    const userId = typeof user === "string" ? user : user?.id;
    if (typeof userId !== "string" || userId === "") throw new TypeError("user must be a non-empty id or an object with an id");
    if (typeof destination !== "string") throw new TypeError("the phone number (or email address) must be a string");
    if (email) {
      const address = normaliseEmail(destination);
      return address === null ? { invalid: "email" } : { key: { phoneNumber: address, purpose, userId }, phone: null };
    }
    const parsed = parsePhone(destination, this.#o.defaultCountry);
    return parsed === null ? { invalid: "phone" } : { key: { phoneNumber: parsed.e164, purpose, userId }, phone: parsed };
  }
}

function limitRefusal(rule: string, retryAfterMs: number, now: number): Refusal {
  const retryAfter = secondsUntil(now + retryAfterMs, now);
  return {
    code: "rate_limited",
    rule,
    message: `Too many codes requested (${rule} limit). Try again in ${retryAfter} seconds.`,
    retryAfter,
  };
}

function tooManyTries(rule: string, retryAfterMs: number, now: number): VerifyResult {
  const retryAfter = secondsUntil(now + retryAfterMs, now);
  return {
    ok: false,
    code: "rate_limited",
    message: `Too many tries for this number. Try again in ${retryAfter} seconds.`,
    retryAfter,
    rule,
  };
}

function lockedResult(retryAfter: number): VerifyResult {
  return {
    ok: false,
    code: "otp_attempts_exceeded",
    message: `Too many wrong codes. Ask for a new code in ${retryAfter} seconds.`,
    retryAfter,
  };
}

function invalidDestination(
  what: "phone" | "email",
  given: string,
): { ok: false; code: "invalid_phone_number" | "invalid_email"; message: string } {
  return what === "email"
    ? { ok: false, code: "invalid_email", message: `${JSON.stringify(String(given).slice(0, 80))} is not a valid email address.` }
    : { ok: false, code: "invalid_phone_number", message: invalidPhoneMessage(given) };
}

function invalidPhoneMessage(phone: string): string {
  return `${JSON.stringify(phone.slice(0, 40))} is not a valid phone number. Use the international format, for example +50688887777.`;
}

function failure(id: string, outcome: Extract<DeliveryOutcome, { ok: false }>, cooldownSeconds: number): SendResult {
  const providerCode = outcome.providerCode ?? undefined;
  switch (outcome.kind) {
    case "invalid_number":
      return { ok: false, code: "invalid_phone_number", message: "The provider says this is not a valid phone number.", id, providerCode };
    case "rejected":
      return {
        ok: false,
        code: "provider_rejected",
        message: "The provider cannot deliver to this number (it may be a landline, opted out or in a blocked region).",
        id,
        providerCode,
      };
    case "throttled":
      return {
        ok: false,
        code: "provider_unavailable",
        message: "The messaging provider is busy. Try again shortly.",
        id,
        providerCode,
        status: 503,
        retryAfter: Math.max(1, cooldownSeconds),
      };
    case "timeout":
      return {
        ok: false,
        code: "provider_unavailable",
        message: "The messaging provider did not answer in time. The code may still arrive and stays valid.",
        id,
        providerCode,
        status: 504,
        retryAfter: Math.max(1, cooldownSeconds),
      };
    default:
      return {
        ok: false,
        code: "provider_unavailable",
        message: "The messaging provider failed to send the code. Try again shortly.",
        id,
        providerCode,
        status: 502,
        retryAfter: Math.max(1, cooldownSeconds),
      };
  }
}

/**
 * A store that cannot be reached fails closed: 503, and nothing further happens (no send, no try).
 * `guard` covers the database, `guardLimiter` the rate limiter (Redis or the database).
 */
export function failClosed(what: string) {
  return async <T>(promise: Promise<T>): Promise<T> => {
    try {
      return await promise;
    } catch (error) {
      // A full bucket counted inside the store's transaction is an answer, not an outage.
      if (error instanceof BucketFull) throw error;
      throw new VericodeError("service_unavailable", `The service cannot reach its ${what}. Try again shortly.`, {
        retryAfter: 5,
        cause: error,
      });
    }
  };
}

const guard = failClosed("database");
const guardLimiter = failClosed("rate limiter");
