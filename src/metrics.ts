import { Counter, Histogram, Registry } from "prom-client";

/**
 * The Prometheus metrics of one vericode service (`GET /metrics`), in a registry of its own so that
 * several services in one process (tests, a host application) never mix their counts.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #sends: Counter<"channel" | "outcome">;
  readonly #verifications: Counter<"outcome">;
  readonly #refusals: Counter<"rule">;
  readonly #spend: Counter<"channel">;
  readonly #latency: Histogram<"channel" | "outcome">;

  constructor() {
    const registers = [this.registry];
    this.#sends = new Counter({
      name: "vericode_otp_sends_total",
      help: "Codes handed to a channel, by channel and outcome (sent, invalid_number, rejected, throttled, failed, timeout).",
      labelNames: ["channel", "outcome"],
      registers,
    });
    this.#verifications = new Counter({
      name: "vericode_otp_verifications_total",
      help: "Verification tries by outcome (verified, invalid, locked, expired, attempts_exceeded, not_found, rate_limited).",
      labelNames: ["outcome"],
      registers,
    });
    this.#refusals = new Counter({
      name: "vericode_otp_refusals_total",
      help: "Sends refused before reaching a provider, by protection rule (cooldown, number, ip, prefix, country, budget…).",
      labelNames: ["rule"],
      registers,
    });
    this.#spend = new Counter({
      name: "vericode_sms_spend_usd_total",
      help: "What the sends cost, in US dollars: the provider's price when it answers with one, else the estimate.",
      labelNames: ["channel"],
      registers,
    });
    this.#latency = new Histogram({
      name: "vericode_provider_request_seconds",
      help: "How long the provider took to accept or refuse a message (retries included), by channel and outcome.",
      labelNames: ["channel", "outcome"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    });
  }

  sent(channel: string, outcome: string, seconds: number, spentMicros: number | null): void {
    this.#sends.inc({ channel, outcome });
    this.#latency.observe({ channel, outcome }, seconds);
    if (spentMicros !== null && spentMicros > 0) this.#spend.inc({ channel }, spentMicros / 1_000_000);
  }

  verified(outcome: string): void {
    this.#verifications.inc({ outcome });
  }

  refused(rule: string): void {
    this.#refusals.inc({ rule });
  }
}
