/** vericode's public surface: the service, its HTTP faces, its errors and its types. */

export { CHANNEL_NAMES, type Channel, type ChannelName, type DeliveryOutcome, type OutgoingMessage } from "./channels/channel.js";
export { ConsoleChannel } from "./channels/console.js";
export { SmtpEmailChannel } from "./channels/email.js";
export { TwilioSmsChannel, TwilioVoiceChannel, TwilioWhatsAppChannel } from "./channels/twilio-sms.js";
export { type Clock, ManualClock, systemClock } from "./clock.js";
export { type Config, type LoadConfigOptions, loadConfig } from "./config.js";
export { ConfigError, ERROR_CATALOG, type ErrorCode, type FieldError, VericodeError } from "./errors.js";
export { FIELD_ERROR_CODES, type FieldErrorCode } from "./field-errors.js";
export { buildApp } from "./http/app.js";
export { bearerAuth, requireVerifiedPhone } from "./http/auth.js";
export { type VericodePluginOptions, vericodePlugin } from "./http/plugin.js";
export { Messages } from "./i18n/messages.js";
export type { Bucket, Consumed, Limiter } from "./limits/limiter.js";
export { RedisLimiter } from "./limits/redis-limiter.js";
export { SqlLimiter } from "./limits/sql-limiter.js";
export type { OtpService, SendContext } from "./otp/otp-service.js";
export { PURPOSES, type Purpose, type SendResult, type UserRef, type VerifyResult } from "./otp/types.js";
export type { Store } from "./store/store.js";
export { createVericode, type Vericode, type VericodeOptions } from "./vericode.js";
