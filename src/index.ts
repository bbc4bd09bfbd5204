/** vericode's public surface: the service, its HTTP faces, its errors and its types. */

export type { Channel, DeliveryOutcome, OutgoingMessage } from "./channels/channel.js";
export { ConsoleChannel } from "./channels/console.js";
export { TwilioSmsChannel } from "./channels/twilio-sms.js";
export { type Clock, ManualClock, systemClock } from "./clock.js";
export { type Config, type LoadConfigOptions, loadConfig } from "./config.js";
export { ConfigError, ERROR_CATALOG, type ErrorCode, VericodeError } from "./errors.js";
export { buildApp } from "./http/app.js";
export { type VericodePluginOptions, vericodePlugin } from "./http/plugin.js";
export type { OtpService } from "./otp/otp-service.js";
export { PURPOSES, type Purpose, type SendResult, type UserRef, type VerifyResult } from "./otp/types.js";
export type { Store } from "./store/store.js";
export { createVericode, type Vericode, type VericodeOptions } from "./vericode.js";
