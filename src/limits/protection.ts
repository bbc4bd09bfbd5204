import type { PhoneInfo } from "../phone.js";
import type { ChallengeKey } from "../records.js";
import type { BudgetHold, BudgetStore, SendOpened, SendTake, TryTake } from "../store/store.js";
import type { Bucket, Limiter } from "./limiter.js";
import type { BudgetPeriod, ProtectionConfig, RateRule } from "./settings.js";

/** Why a send (or a try) was refused before anything went out. */
export interface Refusal {
  code: "rate_limited" | "destination_not_allowed" | "budget_exceeded";
  /** The rule that refused, as reported to the client and kept in the refusal log. */
  rule: string;
  message: string;
  /** Whole seconds until it may pass, when that is known. */
  retryAfter?: number;
}

/**
 * What protection lets a send take: what the store takes in the send's own step (the buckets, when the
 * limiter counts in the store, and the budget's hold), and what a limiter elsewhere (Redis) took already,
 * which goes back if the store refuses the send.
 */
export interface Admission {
  take: SendTake;
  takenElsewhere: readonly Bucket[];
  /** The budget's hold, settled once the provider has answered; null when there is no budget. */
  hold: BudgetHold | null;
}

/** What protection lets a try take: the store's part, and whether the breaker's count is left to the caller. */
export interface TryAdmission {
  take: TryTake;
  /** The breaker counts a verification after it, through the limiter (Redis): call noteVerified. */
  noteAfter: boolean;
}

/**
 * How long the breaker trusts what it read of a scope. The window it judges is over, so its counts no
 * longer change; a pause another instance sets is seen here within this time. Every send to a busy country
 * would otherwise read the same counters again.
 */
const BREAKER_FRESH_MS = 1000;
/** Scopes (countries and number ranges) whose breaker state is kept at most. */
const BREAKER_SEEN_MAX = 10_000;

/** The breaker's figures for one scope, as read at `checkedAt`. */
interface BreakerState {
  /** The window judged. */
  previous: number;
  checkedAt: number;
  /** When a pause ends; 0 when there is none. */
  pauseUntil: number;
  sent: number;
  verified: number;
  tripped: boolean;
}

/**
 * The protection rules around a send, in the order they apply (docs/protection.md): destination rules
 * (country, prefix, number type) and the conversion breaker, with SAFE_NUMBERS exempt; then the rate
 * limits in the shared limiter; then the spend budget. Pure decisions here, state in the limiter and store.
 */
export class Protection {
  readonly #c: ProtectionConfig;
  readonly #limiter: Limiter;
  readonly #store: BudgetStore;
  /** The limiter counts in the service's own database: its buckets go to the store with the send or try. */
  readonly #inStore: boolean;
  /** What the breaker last read per scope (see BREAKER_FRESH_MS). */
  readonly #breakerSeen = new Map<string, BreakerState>();

  constructor(config: ProtectionConfig, limiter: Limiter, store: BudgetStore) {
    this.#c = config;
    this.#limiter = limiter;
    this.#store = store;
    this.#inStore = limiter.store !== null && (limiter.store as object) === (store as object);
  }

  get limiter(): Limiter {
    return this.#limiter;
  }

  /**
   * The rules before a send, in order: destination, breaker, rate limits, budget. A limiter in the
   * service's database leaves its buckets to the store (one atomic step with the send); any other takes
   * them here. Test numbers are never sent: no rule applies to them.
   */
  async admitSend(
    key: ChallengeKey,
    phone: PhoneInfo | null,
    ip: string | null,
    now: number,
  ): Promise<{ ok: true; admission: Admission } | { ok: false; refusal: Refusal }> {
    // The destination rules and the breaker are about phone numbers; an email address has its limits.
    const early = phone === null ? null : (this.destination(phone) ?? (await this.breaker(phone, now)));
    if (early !== null) return { ok: false, refusal: early };
    const buckets = this.sendBuckets(key, phone, ip);
    // Email costs nothing per message: only SMS, WhatsApp and calls draw on the budget.
    const hold = phone === null ? null : this.budgetHold(phone, now);
    if (this.#inStore) return { ok: true, admission: { take: { buckets, budget: hold }, takenElsewhere: [], hold } };
    const consumed = await this.#limiter.consume(buckets, now);
    if (!consumed.ok) return { ok: false, refusal: limitRefusal(consumed.rule, consumed.retryAfterMs) };
    return { ok: true, admission: { take: { budget: hold }, takenElsewhere: buckets, hold } };
  }

  /**
   * The rules before a send an application server asks for on its user's behalf (the /v2 API): the same
   * destination rules, breaker, limits and budget as admitSend, but the caller is the application, not its
   * user, so neither the per-user limit nor the per-challenge one counts it (a busy application would stop
   * after RATE_LIMIT_USER sends); the end user's address (`endUserIp`) counts on the IP limit, and `extra`
   * (the service's own rate limits) count too. When the store keeps the limits and no budget hold is
   * needed, the units are the store's to take with the send (`take`), as admitSend hands them over; else
   * every unit and the budget's hold are taken here, at once (`taken`), and `giveBackAppSend` returns them.
   */
  async admitAppSend(
    to: string,
    phone: PhoneInfo | null,
    endUserIp: string | null,
    extra: readonly Bucket[],
    now: number,
  ): Promise<{ ok: true; take: Bucket[]; taken: Bucket[]; hold: BudgetHold | null } | { ok: false; refusal: Refusal }> {
    const early = phone === null ? null : (this.destination(phone) ?? (await this.breaker(phone, now)));
    if (early !== null) return { ok: false, refusal: early };
    const key = { phoneNumber: to, purpose: "login" as const, userId: "" };
    const own = this.sendBuckets(key, phone, endUserIp).filter((bucket) => bucket.rule !== "user" && bucket.rule !== "challenge");
    const buckets = [...own, ...extra];
    const hold = phone === null ? null : this.budgetHold(phone, now);
    if (this.#inStore && hold === null) return { ok: true, take: buckets, taken: [], hold };
    const consumed = await this.#limiter.consume(buckets, now);
    if (!consumed.ok) return { ok: false, refusal: limitRefusal(consumed.rule, consumed.retryAfterMs) };
    let reserved = false;
    try {
      reserved = hold === null || (await this.#store.reserveBudget(hold, now));
    } finally {
      // Refused or failed, the units go back: nothing will be sent.
      if (!reserved) await this.#limiter.release(buckets, now);
    }
    if (!reserved) return { ok: false, refusal: this.#budgetRefusal(now) };
    return { ok: true, take: [], taken: buckets, hold };
  }

  /**
   * The try limit (RATE_LIMIT_VERIFY) for a check an application server asks for (the /v2 API): per
   * destination, on a counter of its own beside the native API's per-purpose ones. When the store keeps
   * the limits, the bucket is the store's to take with the check (`take`); else it is taken here.
   */
  async admitAppTry(to: string, now: number): Promise<{ ok: true; take: Bucket[] } | { ok: false; rule: string; retryAfterMs: number }> {
    const rate = this.#c.limits.verify;
    if (rate === null) return { ok: true, take: [] };
    const buckets = [{ key: `verify:${to}:v2`, limit: rate.limit, windowMs: rate.windowMs, rule: "verify" }];
    // Kept by the store: it takes them with the check itself, in its transaction (as admitTry hands them over).
    if (this.#inStore) return { ok: true, take: buckets };
    const consumed = await this.#limiter.consume(buckets, now);
    return consumed.ok ? { ok: true, take: [] } : consumed;
  }

  /** Returns what admitAppSend took, for a send that was refused further on (nothing went out). */
  async giveBackAppSend(taken: readonly Bucket[], hold: BudgetHold | null, now: number): Promise<void> {
    await this.#limiter.release(taken, now);
    if (hold !== null) {
      await this.#store.settleBudget({ period: hold.period, reservedMicros: hold.micros, spentMicros: 0, codeId: "", final: true }, now);
    }
  }

  /** A send the store refused: the units a limiter elsewhere took go back (the store's own never stayed). */
  async giveBack(admission: Admission, now: number): Promise<void> {
    if (admission.takenElsewhere.length > 0) await this.#limiter.release(admission.takenElsewhere, now);
  }

  /** The refusal for a store's `limited` or `over_budget`. */
  refusalOf(opened: Extract<SendOpened, { kind: "limited" | "over_budget" }>, now: number): Refusal {
    return opened.kind === "limited" ? limitRefusal(opened.rule, opened.retryAfterMs) : this.#budgetRefusal(now);
  }

  /**
   * The limit on tries per number and purpose, and the breaker's count of a verification: handed to the
   * store with the try when the limiter counts there, else taken here (and counted after, by the caller).
   */
  async admitTry(
    key: ChallengeKey,
    phone: PhoneInfo | null,
    now: number,
    options: { exempt: boolean },
  ): Promise<{ ok: true; admission: TryAdmission } | { ok: false; rule: string; retryAfterMs: number }> {
    // Test numbers take nothing from the try limit.
    const buckets = options.exempt ? [] : this.verifyBuckets(key);
    if (this.#inStore) {
      const counts = phone === null ? null : this.#counters("ok", phone, now);
      const countOnVerified = counts === null ? null : { keys: counts.keys, windowMs: counts.ttl };
      return { ok: true, admission: { take: { buckets, countOnVerified }, noteAfter: false } };
    }
    if (buckets.length > 0) {
      const consumed = await this.#limiter.consume(buckets, now);
      if (!consumed.ok) return consumed;
    }
    return { ok: true, admission: { take: {}, noteAfter: phone !== null } };
  }

  isSafe(phone: PhoneInfo): boolean {
    return this.#c.safeNumbers.has(phone.e164);
  }

  /** Country allow-list, blocked prefixes and refused number types; null when the number may be sent to. */
  destination(phone: PhoneInfo): Refusal | null {
    if (this.isSafe(phone)) return null;
    const { allowedCountries, blockedPrefixes, blockedNumberTypes } = this.#c;
    if (allowedCountries !== null && (phone.country === undefined || !allowedCountries.has(phone.country))) {
      return {
        code: "destination_not_allowed",
        rule: "country",
        message: `Codes are not sent to numbers of ${phone.country ?? `+${phone.callingCode}`} by this service.`,
      };
    }
    if (blockedPrefixes.some((prefix) => phone.e164.startsWith(prefix))) {
      return {
        code: "destination_not_allowed",
        rule: "prefix_blocked",
        message: "Codes are not sent to this number range by this service.",
      };
    }
    const type = phone.type ?? "UNKNOWN";
    if (blockedNumberTypes.has(type)) {
      return {
        code: "destination_not_allowed",
        rule: "number_type",
        message: `Codes are not sent to ${type.toLowerCase().replaceAll("_", " ")} numbers. Use a mobile number.`,
      };
    }
    return null;
  }

  /**
   * The conversion breaker: when a country or a number range had at least `minSends` sends in the last
   * complete window and fewer than `minConversion` of them were verified, sends there pause for a while.
   * The last complete window is judged, not the current one, so codes have had time to be typed in.
   */
  async breaker(phone: PhoneInfo, now: number): Promise<Refusal | null> {
    const breaker = this.#c.breaker;
    if (breaker === null || this.isSafe(phone)) return null;
    const previous = Math.floor(now / breaker.windowMs) - 1;
    const names = scopes(phone);
    const states = names.map((scope) => {
      const state = this.#breakerSeen.get(scope);
      return state !== undefined && state.previous === previous && now >= state.checkedAt && now - state.checkedAt < BREAKER_FRESH_MS
        ? state
        : undefined;
    });
    const stale = names.filter((_, i) => states[i] === undefined);
    if (stale.length > 0) {
      // One read for every scope not seen in the last second: pause, sends, verifications and whether
      // these figures tripped already.
      const counters = await this.#limiter.read(
        stale.flatMap((scope) => [
          `conv:pause:${scope}`,
          `conv:sent:${scope}:${previous}`,
          `conv:ok:${scope}:${previous}`,
          `conv:tripped:${scope}:${previous}`,
        ]),
        now,
      );
      for (const [i, scope] of stale.entries()) {
        const [pause, sent, verified, tripped] = counters.slice(i * 4, i * 4 + 4);
        const state: BreakerState = {
          previous,
          checkedAt: now,
          pauseUntil: pause !== undefined && pause.count > 0 ? pause.resetAt : 0,
          sent: sent?.count ?? 0,
          verified: verified?.count ?? 0,
          tripped: (tripped?.count ?? 0) > 0,
        };
        this.#remember(scope, state);
        states[names.indexOf(scope)] = state;
      }
    }
    for (const [i, scope] of names.entries()) {
      const state = states[i] as BreakerState;
      if (state.pauseUntil > now) return paused(state.pauseUntil, now);
      if (state.sent >= breaker.minSends && state.verified < breaker.minConversion * state.sent && !state.tripped) {
        // One window's figures trip the breaker once; the pause then runs its course.
        await this.#limiter.add([`conv:tripped:${scope}:${previous}`], 2 * breaker.windowMs, now);
        await this.#limiter.add([`conv:pause:${scope}`], breaker.pauseMs, now);
        state.tripped = true;
        state.pauseUntil = now + breaker.pauseMs;
        return paused(state.pauseUntil, now);
      }
    }
    return null;
  }

  /** Keeps what the breaker read of a scope, the most recent last; the oldest go past BREAKER_SEEN_MAX. */
  #remember(scope: string, state: BreakerState): void {
    const seen = this.#breakerSeen;
    seen.delete(scope);
    seen.set(scope, state);
    if (seen.size > BREAKER_SEEN_MAX) seen.delete(seen.keys().next().value as string);
  }

  /** Counts a send that went out, for the breaker. */
  async noteSent(phone: PhoneInfo, now: number): Promise<void> {
    await this.#note("sent", phone, now);
  }

  /** Counts a verification, for the breaker. */
  async noteVerified(phone: PhoneInfo, now: number): Promise<void> {
    await this.#note("ok", phone, now);
  }

  async #note(what: "sent" | "ok", phone: PhoneInfo, now: number): Promise<void> {
    const counters = this.#counters(what, phone, now);
    if (counters !== null) await this.#limiter.add(counters.keys, counters.ttl, now);
  }

  /** The breaker's counters of a send or a verification now; null when the breaker is off. */
  #counters(what: "sent" | "ok", phone: PhoneInfo, now: number): { keys: string[]; ttl: number } | null {
    const breaker = this.#c.breaker;
    if (breaker === null) return null;
    const window = Math.floor(now / breaker.windowMs);
    // The counter lives to the end of the next window, when it is the one judged.
    return { keys: scopes(phone).map((scope) => `conv:${what}:${scope}:${window}`), ttl: (window + 2) * breaker.windowMs - now };
  }

  /** The buckets one send takes a unit from. */
  sendBuckets(key: ChallengeKey, phone: PhoneInfo | null, ip: string | null): Bucket[] {
    const { limits } = this.#c;
    const buckets: Bucket[] = [];
    const push = (rule: string, rate: RateRule | null, name: string) => {
      if (rate !== null) buckets.push({ key: `${rule}:${name}`, limit: rate.limit, windowMs: rate.windowMs, rule });
    };
    push("challenge", limits.challenge, `${key.phoneNumber}:${key.purpose}:${key.userId}`);
    push("number", limits.number, key.phoneNumber);
    push("user", limits.user, key.userId);
    if (ip !== null) push("ip", limits.ip, ip);
    // A number range is a phone idea; an email address is limited as itself (the `number` bucket).
    if (phone !== null) push("prefix", limits.prefix, numberPrefix(phone.e164));
    push("global", limits.global, "all");
    return buckets;
  }

  /**
   * The bucket a passwordless login or password reset start takes from, whether or not the number has an
   * account: per client address, on the IP limit, apart from the sends' own.
   */
  flowBuckets(ip: string): Bucket[] {
    const rate = this.#c.limits.ip;
    return rate === null ? [] : [{ key: `flow:${ip}`, limit: rate.limit, windowMs: rate.windowMs, rule: "ip" }];
  }

  /** The bucket a verification try takes a unit from: per number and purpose, whoever asks. */
  verifyBuckets(key: ChallengeKey): Bucket[] {
    const rate = this.#c.limits.verify;
    return rate === null
      ? []
      : [{ key: `verify:${key.phoneNumber}:${key.purpose}`, limit: rate.limit, windowMs: rate.windowMs, rule: "verify" }];
  }

  /** The hold a send takes on the budget (its estimated price); null when there is no budget to keep. */
  budgetHold(phone: PhoneInfo, now: number): BudgetHold | null {
    const budget = this.#c.budget;
    if (budget === null) return null;
    return { period: budgetPeriod(budget.period, now), micros: this.estimateMicros(phone), capMicros: budget.capMicros };
  }

  #budgetRefusal(now: number): Refusal {
    const budget = this.#c.budget;
    const period = budget?.period ?? "total";
    const end = periodEnd(period, now);
    return {
      code: "budget_exceeded",
      rule: "budget",
      message:
        period === "total"
          ? "The SMS budget of this service is spent. No more codes can be sent."
          : `The SMS budget of this service is spent for this ${period}. Try again after it renews.`,
      ...(end === null ? {} : { retryAfter: Math.max(1, Math.ceil((end - now) / 1000)) }),
    };
  }

  /** Ends a reservation: the provider's price when known, else the estimate; nothing when nothing went out. */
  async settle(
    reservation: BudgetHold | null,
    codeId: string,
    spent: { micros: number; final: boolean } | null,
    now: number,
  ): Promise<void> {
    if (reservation === null) return;
    await this.#store.settleBudget(
      {
        period: reservation.period,
        reservedMicros: reservation.micros,
        spentMicros: spent?.micros ?? 0,
        codeId,
        final: spent?.final ?? true,
      },
      now,
    );
  }

  estimateMicros(phone: PhoneInfo): number {
    const prices = this.#c.pricesMicros;
    return prices.get(phone.country ?? "") ?? prices.get("default") ?? 0;
  }

  /** Spent, reserved and left in the current period (`vericode budget`). */
  async budgetState(now: number): Promise<{ period: string; capMicros: number; spentMicros: number; reservedMicros: number } | null> {
    const budget = this.#c.budget;
    if (budget === null) return null;
    const period = budgetPeriod(budget.period, now);
    return { period, capMicros: budget.capMicros, ...(await this.#store.budget(period)) };
  }
}

/** The number without its last four digits: one subscriber range. */
export function numberPrefix(e164: string): string {
  return e164.slice(0, Math.max(2, e164.length - 4));
}

function scopes(phone: PhoneInfo): string[] {
  return [`country:${phone.country ?? `+${phone.callingCode}`}`, `prefix:${numberPrefix(phone.e164)}`];
}

/** The refusal for a full bucket: its rule, and whole seconds until its window ends. */
export function limitRefusal(rule: string, retryAfterMs: number): Refusal {
  const retryAfter = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return {
    code: "rate_limited",
    rule,
    message: `Too many codes requested (${rule} limit). Try again in ${retryAfter} seconds.`,
    retryAfter,
  };
}

function paused(until: number, now: number): Refusal {
  return {
    code: "rate_limited",
    rule: "conversion_breaker",
    message: "Too few of the codes sent to this region are being used: sends there are paused for a while.",
    retryAfter: Math.max(1, Math.ceil((until - now) / 1000)),
  };
}

/** `total`, `2026-11` or `2026-11-25` (UTC). */
export function budgetPeriod(period: BudgetPeriod, now: number): string {
  if (period === "total") return "total";
  const iso = new Date(now).toISOString();
  return period === "month" ? iso.slice(0, 7) : iso.slice(0, 10);
}

function periodEnd(period: BudgetPeriod, now: number): number | null {
  const date = new Date(now);
  if (period === "day") return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1);
  if (period === "month") return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
  return null;
}
