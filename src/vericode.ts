import { Accounts } from "./accounts/accounts.js";
import { TokenService } from "./accounts/tokens.js";
import { Analytics } from "./analytics/report.js";
import { CHANNEL_NAMES, type Channel, type ChannelName } from "./channels/channel.js";
import { ConsoleChannel } from "./channels/console.js";
import { type Clock, systemClock } from "./clock.js";
import { type Config, type Environment, loadConfig } from "./config.js";
import { Messages } from "./i18n/messages.js";
import type { Limiter } from "./limits/limiter.js";
import { Protection } from "./limits/protection.js";
import { SqlLimiter } from "./limits/sql-limiter.js";
import { createLogger, type Logger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { TWILIO_STATUS_PATH } from "./otp/delivery.js";
import { OtpService } from "./otp/otp-service.js";
import { SqlStore } from "./store/sql-store.js";
import type { Store } from "./store/store.js";
import { VerifyService } from "./verify/verify-service.js";

export interface VericodeOptions {
  /** Variables read instead of `process.env` (same names as the environment). */
  env?: Environment;
  /** A dotenv file read under the environment; `false` reads none. @default ".env" */
  envFile?: string | false;
  /** An already resolved configuration; when given, `env` and `envFile` are ignored. */
  config?: Config;
  /** @default the system clock */
  clock?: Clock;
  /** Replaces the SMS channel chosen by SMS_PROVIDER. */
  channel?: Channel;
  /** Replaces channels by name (`whatsapp`, `voice`…). */
  channels?: Partial<Record<ChannelName, Channel>>;
  /** @default a pino logger at LOG_LEVEL, with codes, tokens and secrets redacted */
  logger?: Logger;
  /** Run pending migrations on start. @default true */
  migrate?: boolean;
  /** Deadline of one provider call, retries included. @default 10000 */
  sendTimeoutMs?: number;
  /** PostgreSQL only: the schema to work in. @default the connection's search_path */
  databaseSchema?: string;
  /** Replaces the limiter chosen by REDIS_URL (the database's own when unset). */
  limiter?: Limiter;
  /** Redis only: the prefix of every key. @default REDIS_KEY_PREFIX, or "vericode:rl:" */
  redisPrefix?: string;
}

export interface Vericode {
  readonly config: Config;
  readonly store: Store;
  readonly otp: OtpService;
  readonly accounts: Accounts;
  readonly tokens: TokenService;
  /** Rate limits, fraud rules and the spend budget (and the limiter they count in). */
  readonly protection: Protection;
  /** Twilio Verify v2's behaviour (the `/v2` API, on when VERIFY_ACCOUNT_SID and VERIFY_AUTH_TOKEN are set). */
  readonly verify: VerifyService;
  /** Reports over the codes and refusals of a time range (admin API, `vericode report`, dashboard). */
  readonly analytics: Analytics;
  /** Prometheus counters and histograms of this service (`GET /metrics`; `metrics.registry` to merge them). */
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** Migrations run at start, by name. */
  readonly migrations: string[];
  close(): Promise<void>;
}

/** Builds the whole service from the environment (and `.env`), options overriding it. */
export async function createVericode(options: VericodeOptions = {}): Promise<Vericode> {
  const config =
    options.config ??
    loadConfig({
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.envFile === undefined ? {} : { envFile: options.envFile }),
      ...(options.sendTimeoutMs === undefined ? {} : { twilioTimeoutMs: options.sendTimeoutMs }),
    });
  const log = options.logger ?? createLogger(config.logLevel);
  for (const warning of config.warnings) log.warn({ event: "config.warning" }, warning);
  const clock = options.clock ?? systemClock;
  const store = new SqlStore(config.database, options.databaseSchema === undefined ? {} : { schema: options.databaseSchema });
  let migrations: string[] = [];
  try {
    if (options.migrate !== false) {
      migrations = await store.migrate();
      // Said once, by the process that migrates (a worker of --workers leaves it to the primary).
      for (const warning of await store.warnings()) log.warn({ event: "database.warning" }, warning);
    }
  } catch (error) {
    await store.close();
    throw error;
  }
  let limiter: Limiter;
  if (options.limiter !== undefined) limiter = options.limiter;
  else if (config.redisUrl !== null) {
    const { RedisLimiter } = await import("./limits/redis-limiter.js");
    const redis = new RedisLimiter(config.redisUrl, { prefix: options.redisPrefix ?? config.redisKeyPrefix });
    // Start even when Redis is away (sends then fail closed with 503), but say so at once.
    await redis
      .ready()
      .catch((error: Error) =>
        log.error({ event: "limiter.unreachable", err: error }, "Redis is not reachable: sends fail closed until it is"),
      );
    limiter = redis;
  } else limiter = new SqlLimiter(store);
  const protection = new Protection(config.protection, limiter, store);
  const channels = await defaultChannels(config, log);
  for (const [name, channel] of Object.entries(options.channels ?? {})) channels.set(name as ChannelName, channel);
  if (options.channel !== undefined) channels.set("sms", options.channel);
  const tokens = new TokenService(config.jwt);
  const metrics = new Metrics();
  const otp = new OtpService({
    metrics,
    store,
    channels,
    fallback: config.channelFallback,
    clock,
    log,
    keys: config.otp.keys,
    codeLength: config.otp.length,
    rules: config.otp,
    defaultCountry: config.defaultCountry,
    testNumbers: config.otp.testNumbers,
    sendTimeoutMs: options.sendTimeoutMs ?? config.twilio?.timeoutMs ?? 10_000,
    protection,
    messages: new Messages({
      overrides: config.messages.overrides,
      defaultLocale: config.messages.defaultLocale,
      webOtpDomain: config.messages.webOtpDomain,
    }),
  });
  const verify = new VerifyService({
    store: store.verify,
    codes: store,
    channels,
    protection,
    keys: config.otp.keys,
    clock,
    log,
    metrics,
    defaultCountry: config.defaultCountry,
    testNumbers: config.otp.testNumbers,
    sendTimeoutMs: options.sendTimeoutMs ?? config.twilio?.timeoutMs ?? 10_000,
  });
  const accounts = new Accounts({ store, tokens, clock, defaultCountry: config.defaultCountry, otp, protection, log });
  return {
    config,
    store,
    otp,
    accounts,
    tokens,
    protection,
    verify,
    analytics: new Analytics(store.reports),
    metrics,
    log,
    clock,
    migrations,
    close: async () => {
      await limiter.close();
      await store.close();
    },
  };
}

/**
 * The channels of the configured provider: Twilio's SMS, WhatsApp and voice, or the console for all
 * three. The Twilio SDK and nodemailer load only when configured: a command on the console provider
 * starts without them.
 */
async function defaultChannels(config: Config, log: Logger): Promise<Map<ChannelName, Channel>> {
  const email = config.email === null ? null : await import("./channels/email.js");
  if (config.smsProvider === "twilio" && config.twilio !== null) {
    const { TwilioSmsChannel, TwilioVoiceChannel, TwilioWhatsAppChannel } = await import("./channels/twilio-sms.js");
    // Twilio reports each message's fate to this endpoint (routes/twilio-status.ts).
    const options = { statusCallback: `${config.publicBaseUrl}${TWILIO_STATUS_PATH}` };
    const channels = new Map<ChannelName, Channel>([
      ["sms", new TwilioSmsChannel(config.twilio, options)],
      ["whatsapp", new TwilioWhatsAppChannel(config.twilio, options)],
    ]);
    // A call needs a caller id: a messaging service alone cannot call.
    if (config.twilio.phoneNumber !== null) channels.set("voice", new TwilioVoiceChannel(config.twilio, options));
    if (email !== null && config.email !== null) {
      channels.set("email", new email.SmtpEmailChannel(config.email, { timeoutMs: config.twilio.timeoutMs }));
    }
    return channels;
  }
  const channels = new Map<ChannelName, Channel>(CHANNEL_NAMES.map((name) => [name, new ConsoleChannel(log, name)]));
  if (email !== null && config.email !== null) channels.set("email", new email.SmtpEmailChannel(config.email));
  return channels;
}
