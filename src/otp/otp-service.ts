import type { CountryCode } from "libphonenumber-js/max";
import type { Channel, ChannelName, DeliveryOutcome } from "../channels/channel.js";
import type { Clock } from "../clock.js";
import { normaliseEmail } from "../email.js";
import { failClosed } from "../errors.js";
import type { Messages } from "../i18n/messages.js";
import { newId } from "../ids.js";
import { type Admission, numberPrefix, type Protection, type Refusal } from "../limits/protection.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { invalidPhoneMessage, maskPhone, type PhoneInfo, parsePhone } from "../phone.js";
import type { OtpKey } from "../records.js";
import type { CodeStore, LiveCode, SendOpened, SendRule, VerifyTry } from "../store/store.js";
import { CodeKeys, findMatchingMac, generateCode } from "./code.js";
import { deliveryUpdate, spentOn } from "./delivery.js";
import {
  cooldownMs,
  LIVE_CODES_PER_CHALLENGE,
  type NoTryReason,
  noTryReason,
  type OtpRules,
  secondsUntil,
  sendRefusal,
  sendsToMaxCooldown,
} from "./policy.js";
import { type ChallengeKey, isPurpose, type OtpRecord, type SendResult, type UserRef, type VerifyResult } from "./types.js";

export interface OtpServiceOptions {
  store: CodeStore;
  /** The configured channels by name; `sms` at least. */
  channels: ReadonlyMap<ChannelName, Channel>;
  /** CHANNEL_FALLBACK: after a channel in this list is refused or fails, the ones after it are tried. */
  fallback: readonly ChannelName[];
  clock: Clock;
  log: Logger;
  /** The codes' keys (OTP_SECRETS): new codes under the first, stored ones under the key they name. */
  keys: readonly OtpKey[];
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

/** A send's destination, read and checked: its challenge, and the number (null for an email address). */
interface Target {
  key: ChallengeKey;
  phone: PhoneInfo | null;
}

/** A send that passed protection: what it took, the record to store, and the code (only in memory). */
interface Opening {
  target: Target;
  channel: Channel;
  record: OtpRecord;
  code: string;
  admission: Admission;
  ip: string | null;
  now: number;
}

/**
 * Sends and verifies one-time codes. Expected outcomes (wrong code, cooldown, provider refusal) resolve
 * as values; it throws VericodeError for misuse (a bad purpose) and when the database fails.
 */
export class OtpService {
  readonly #o: OtpServiceOptions;
  readonly #keys: CodeKeys;

  constructor(options: OtpServiceOptions) {
    this.#o = options;
    this.#keys = new CodeKeys(options.keys);
  }

  /**
   * Sends a new code for (phone, user, purpose), as the seed's `send_otp(phone, user, purpose)`, in four
   * steps: admit (the protection rules, docs/protection.md), open (the challenge and the record, with
   * what admit took, in one atomic step), deliver (the channel, and the fallbacks), settle (the record's
   * delivery, the breaker's count, the budget). `context.ip` feeds the per-address limit.
   */
  async sendOtp(phone: string, user: UserRef, purpose: string, context: SendContext = {}): Promise<SendResult> {
    const channelName = context.channel ?? "sms";
    const target = this.#target(phone, user, purpose, channelName === "email");
    if ("invalid" in target) return { ...invalidDestination(target.invalid, phone), id: null };
    const channel = this.#o.channels.get(channelName);
    if (channel === undefined) {
      return { ok: false, code: "channel_unavailable", message: `The ${channelName} channel is not configured on this service.`, id: null };
    }
    const now = this.#o.clock.now().getTime();
    const ip = context.ip ?? null;
    const fixedCode = this.#o.testNumbers.get(target.key.phoneNumber);

    const admitted = await this.#admit(target, ip, now, fixedCode !== undefined);
    if (!admitted.ok) return this.#refuse(admitted.refusal, target, ip, now);
    const opening = this.#opening(target, channel, admitted.admission, fixedCode, ip, now);
    const opened = await this.#open(opening, fixedCode !== undefined);
    if (opened.kind !== "opened") {
      await guardLimiter(this.#o.protection.giveBack(admitted.admission, now));
      return this.#refuse(this.#openRefusal(opened, now), target, ip, now);
    }
    const sent = {
      ok: true as const,
      id: opening.record.id,
      message: "Code sent.",
      expiresAt: new Date(opening.record.expiresAt),
      resendAfter: new Date(now + cooldownMs(opened.sendCount, this.#o.rules)),
    };
    // A test number's code is never sent.
    if (fixedCode !== undefined) return sent;
    const delivery = await this.#deliver(opening, context);
    await this.#settle(opening, delivery);
    if (delivery.outcome.ok) return sent;
    return failure(opening.record.id, delivery.outcome, this.#o.rules.resendCooldownSeconds);
  }

  /** Step 1: the protection rules. Test numbers are never sent: no limit, no rule and no budget applies. */
  async #admit(
    target: Target,
    ip: string | null,
    now: number,
    testNumber: boolean,
  ): Promise<{ ok: true; admission: Admission } | { ok: false; refusal: Refusal }> {
    if (testNumber) return { ok: true, admission: { take: {}, takenElsewhere: [], hold: null } };
    return guardLimiter(this.#o.protection.admitSend(target.key, target.phone, ip, now));
  }

  /** The record a send stores (the code's HMAC only) and the code itself, which lives in memory until sent. */
  #opening(target: Target, channel: Channel, admission: Admission, fixedCode: string | undefined, ip: string | null, now: number): Opening {
    const { key, phone } = target;
    const code = fixedCode ?? generateCode(this.#o.codeLength);
    const { codeHash, keyId } = this.#keys.seal(key, code);
    // Written out, not `{ ...key, …}`: on Node 20's V8 an object literal that starts with a spread and goes
    // on with more fields builds new hidden classes on every call (measured: about 1 µs per field, and
    // garbage that outlives two scavenges). docs/benchmarks.md, "Memory".
    const record: OtpRecord = {
      phoneNumber: key.phoneNumber,
      purpose: key.purpose,
      userId: key.userId,
      id: newId("otp", now),
      codeHash,
      keyId,
      channel: fixedCode === undefined ? channel.name : "test",
      // A test number's code is never sent: it is live at once.
      status: fixedCode === undefined ? "pending" : "sent",
      createdAt: now,
      expiresAt: now + this.#o.rules.ttlSeconds * 1000,
      verifiedAt: null,
      providerMessageId: null,
      providerErrorCode: null,
      deliveryStatus: fixedCode === undefined ? null : "not_sent",
      country: phone === null ? null : (phone.country ?? `+${phone.callingCode}`),
      priceMicros: admission.hold?.micros ?? null,
      priceFinal: false,
      fallbackFrom: null,
    };
    return { target, channel, record, code, admission, ip, now };
  }

  /**
   * Step 2: the challenge and the record, with what admit handed to the store, in one atomic step. What a
   * limiter outside the store took goes back when the store refuses (the caller) or fails (here): the one
   * compensation; the store's own takes never stay behind a refusal or a failure.
   */
  async #open(opening: Opening, exempt: boolean): Promise<SendOpened> {
    const { record, admission, now } = opening;
    try {
      return await guard(this.#o.store.beginSend(record, now, this.#sendRule(exempt), admission.take));
    } catch (error) {
      await this.#o.protection.giveBack(admission, now).catch((cause: unknown) => {
        this.#o.log.error({ event: "otp.give_back", id: record.id, err: cause }, "the limiter's units could not be given back");
      });
      throw error;
    }
  }

  #sendRule(exempt: boolean): SendRule {
    const { rules } = this.#o;
    return {
      baseCooldownMs: rules.resendCooldownSeconds * 1000,
      maxCooldownMs: Math.max(rules.resendCooldownSeconds, rules.resendCooldownMaxSeconds) * 1000,
      sendsToMax: sendsToMaxCooldown(rules),
      exempt,
      keepLive: LIVE_CODES_PER_CHALLENGE,
    };
  }

  /** Step 2's refusals: a full bucket or the budget, or the challenge's own cooldown or lock. */
  #openRefusal(opened: Exclude<SendOpened, { kind: "opened" }>, now: number): Refusal {
    if (opened.kind !== "refused") return this.#o.protection.refusalOf(opened, now);
    const refusal =
      opened.challenge === null ? { reason: "cooldown" as const, retryAfter: 1 } : sendRefusal(opened.challenge, this.#o.rules, now);
    const message =
      refusal.reason === "locked"
        ? `Too many wrong codes for this number. Try again in ${refusal.retryAfter} seconds.`
        : `A code was sent moments ago. You can ask for another in ${refusal.retryAfter} seconds.`;
    return { code: "rate_limited", rule: refusal.reason, message, retryAfter: refusal.retryAfter };
  }

  /**
   * Step 3: the message through its channel. CHANNEL_FALLBACK: a refusal or failure at send time tries the
   * next channel; a timeout or a throttle does not (the first message may still arrive).
   */
  async #deliver(opening: Opening, context: SendContext): Promise<{ used: Channel; outcome: DeliveryOutcome; seconds: number }> {
    const { record, code, channel, target } = opening;
    const { messages, rules } = this.#o;
    const locale = messages.resolve({
      requested: context.locale ?? null,
      acceptLanguage: context.acceptLanguage ?? null,
      country: target.phone?.country ?? null,
    });
    const message = {
      to: record.phoneNumber,
      // The WebOTP line belongs to text messages only.
      body:
        channel.name === "email"
          ? messages.email(locale, record.purpose, code, rules.ttlSeconds)
          : channel.name === "voice"
            ? messages.text(locale, record.purpose, code, rules.ttlSeconds)
            : messages.sms(locale, record.purpose, code, rules.ttlSeconds),
      ttlSeconds: rules.ttlSeconds,
      reference: record.id,
      deadline: Date.now() + this.#o.sendTimeoutMs,
      code,
      locale,
      purpose: record.purpose,
    };
    let used = channel;
    const started = performance.now();
    let outcome = await used.send(message);
    for (const next of this.#fallbacks(channel.name)) {
      if (outcome.ok || (outcome.kind !== "rejected" && outcome.kind !== "failed")) break;
      this.#o.log.warn(
        { event: "otp.fallback", id: record.id, from: used.name, to: next.name, providerCode: outcome.providerCode },
        `${used.name} failed: trying ${next.name}`,
      );
      used = next;
      outcome = await used.send(message);
    }
    if (used !== channel) {
      await guard(
        this.#o.store.updateDelivery(record.id, { status: "pending", channel: used.name, fallbackFrom: channel.name }, Date.now()),
      );
    }
    return { used, outcome, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * Step 4: what the provider answered, on the record; the breaker's count of a sent code (both share one
   * group commit when the limiter is in the database); the budget's hold settled; metrics and audit.
   */
  async #settle(opening: Opening, delivery: { used: Channel; outcome: DeliveryOutcome; seconds: number }): Promise<void> {
    const { record, target, admission, now } = opening;
    const { outcome, used } = delivery;
    const { protection } = this.#o;
    await Promise.all([
      guard(this.#o.store.updateDelivery(record.id, deliveryUpdate(outcome), this.#o.clock.now().getTime())),
      outcome.ok && target.phone !== null ? guardLimiter(protection.noteSent(target.phone, now)) : null,
    ]);
    const spent = spentOn(outcome, admission.hold?.micros ?? 0);
    await guard(protection.settle(admission.hold, record.id, spent, now));
    this.#o.metrics?.sent(used.name, outcome.ok ? "sent" : outcome.kind, delivery.seconds, spent?.micros ?? null);
    const to = maskPhone(record.phoneNumber);
    // Each line written out rather than `{ ...audit, outcome }` (see #opening).
    if (outcome.ok) {
      this.#o.log.info({ event: "otp.send", id: record.id, to, purpose: record.purpose, channel: used.name, outcome: "sent" }, "code sent");
    } else {
      this.#o.log.warn(
        {
          event: "otp.send",
          id: record.id,
          to,
          purpose: record.purpose,
          channel: used.name,
          outcome: outcome.kind,
          providerCode: outcome.providerCode,
        },
        "code not sent",
      );
    }
  }

  async #refuse(refusal: Refusal, target: Target, ip: string | null, now: number): Promise<SendResult> {
    const { key, phone } = target;
    await guard(
      this.#o.store.recordRefusal({
        id: newId("ref", now),
        createdAt: now,
        rule: refusal.rule,
        code: refusal.code,
        purpose: key.purpose,
        userId: key.userId,
        country: phone === null ? null : (phone.country ?? `+${phone.callingCode}`),
        phonePrefix: phone === null ? null : numberPrefix(phone.e164),
        ip,
      }),
    );
    this.#o.metrics?.refused(refusal.rule);
    this.#o.log.info(
      { event: "otp.refused", to: maskPhone(key.phoneNumber), purpose: key.purpose, rule: refusal.rule, errorCode: refusal.code },
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

  /** A try in three steps: admit (the try limit), try (counted, then compared, in one atomic step), conclude. */
  async #verify(phone: string, code: string, user: UserRef, purpose: string): Promise<VerifyResult> {
    const { store, clock, rules, protection } = this.#o;
    const target = this.#target(phone, user, purpose, typeof phone === "string" && phone.includes("@"));
    if ("invalid" in target) return invalidDestination(target.invalid, phone);
    const { key, phone: number } = target;
    if (typeof code !== "string") throw new TypeError("code must be a string of digits");
    const now = clock.now().getTime();

    const admitted = await guardLimiter(protection.admitTry(key, number, now, { exempt: this.#o.testNumbers.has(key.phoneNumber) }));
    if (!admitted.ok) return tooManyTries(admitted.rule, admitted.retryAfterMs, now);
    // Counted in the same atomic step as the comparison, whatever it finds, so parallel guesses cannot
    // outrun the budget (the Ory Kratos lesson); compared in constant time with the live codes.
    const expected = this.#keys.expected(key, code);
    const rule = {
      maxAttempts: rules.maxAttempts,
      keepLive: LIVE_CODES_PER_CHALLENGE,
      markPhoneVerified: key.purpose === "registration" && number !== null,
    };
    const match = (codes: LiveCode[]) => {
      const unexpired = codes.filter((record) => record.expiresAt > now);
      return unexpired[findMatchingMac(unexpired.map((record) => ({ stored: record.codeHash, expected: expected(record.keyId) })))];
    };
    const attempt = await guard(store.tryVerify(key, now, rule, match, admitted.admission.take));
    if (attempt.kind === "verified" && admitted.admission.noteAfter && number !== null)
      await guardLimiter(protection.noteVerified(number, now));
    return this.#conclude(key, attempt, now);
  }

  /**
   * What a try's outcome means to the caller; a spent budget locks the challenge. Every outcome leaves an
   * audit line (`otp.verify`), with the record's id and channel where there is one.
   */
  async #conclude(key: ChallengeKey, attempt: VerifyTry, now: number): Promise<VerifyResult> {
    const { rules } = this.#o;
    const audit = (outcome: string, code: { id: string; channel: string } | null, extra: Record<string, unknown> = {}) =>
      this.#o.log[outcome === "locked" || outcome === "replay" ? "warn" : "info"](
        { event: "otp.verify", outcome, to: maskPhone(key.phoneNumber), purpose: key.purpose, ...code, ...extra },
        `verify: ${outcome}`,
      );
    switch (attempt.kind) {
      case "limited":
        audit("rate_limited", null, { rule: attempt.rule });
        return tooManyTries(attempt.rule, attempt.retryAfterMs, now);
      case "refused": {
        const reason = noTryReason(attempt.challenge, rules, now);
        // A challenge already verified: its code was consumed, and is being tried again.
        audit(attempt.challenge?.verifiedAt != null ? "replay" : NO_TRY_OUTCOME[reason.code], attempt.newest);
        return noTryResult(reason);
      }
      case "verified":
        audit("verified", { id: attempt.id, channel: attempt.channel });
        return { ok: true, message: "Code verified.", verifiedAt: new Date(now) };
    }
    const { codes } = attempt;
    const newest = codes[0] === undefined ? null : { id: codes[0].id, channel: codes[0].channel };
    if (!codes.some((record) => record.expiresAt > now)) {
      audit(newest === null ? "not_found" : "expired", newest);
      return noTryResult({ code: newest === null ? "otp_not_found" : "otp_expired" });
    }
    const attemptsRemaining = rules.maxAttempts - attempt.attempts;
    if (attemptsRemaining > 0) {
      audit("invalid", newest, { attemptsRemaining });
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
    await guard(this.#o.store.lockChallenge(key, lockedUntil, now));
    audit("locked", newest);
    return lockedResult(secondsUntil(lockedUntil, now));
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

  /** The challenge a send or a try counts against: a phone number in E.164, or a lower-cased email address. */
  #target(destination: string, user: UserRef, purpose: string, email: boolean): Target | { invalid: "phone" | "email" } {
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

/** The audit outcome of each reason no try was counted. */
const NO_TRY_OUTCOME: Record<NoTryReason["code"], string> = {
  otp_not_found: "not_found",
  otp_expired: "expired",
  otp_attempts_exceeded: "locked",
};

/** Why no try could be counted, as the caller's answer. */
function noTryResult(reason: NoTryReason): VerifyResult {
  switch (reason.code) {
    case "otp_attempts_exceeded":
      return lockedResult(reason.retryAfter);
    case "otp_expired":
      return { ok: false, code: "otp_expired", message: "The code has expired. Ask for a new one." };
    default:
      return { ok: false, code: "otp_not_found", message: "There is no pending code for this number. Ask for a new one." };
  }
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

// A store that cannot be reached fails closed: 503, and nothing further happens (no send, no try).
const guard = failClosed("database");
const guardLimiter = failClosed("rate limiter");
