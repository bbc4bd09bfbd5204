import type { CountryCode } from "libphonenumber-js/max";
import type { Clock } from "../clock.js";
import { type FieldError, failClosed, VericodeError } from "../errors.js";
import { validationError } from "../field-errors.js";
import { newId } from "../ids.js";
import type { Protection } from "../limits/protection.js";
import type { Logger } from "../logger.js";
import type { OtpService, SendContext } from "../otp/otp-service.js";
import { verifyError } from "../otp/verify-error.js";
import { invalidPhoneField, invalidPhoneMessage, normalisePhone } from "../phone.js";
import type { UserRecord, UserStore } from "../store/store.js";
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from "./passwords.js";
import type { TokenService } from "./tokens.js";

export interface PublicUser {
  id: string;
  username: string | null;
  email: string | null;
  phone_number: string | null;
  phone_verified: boolean;
}

export interface Registration {
  username?: string | undefined;
  email?: string | undefined;
  password: string;
  phone_number?: string | undefined;
}

export interface TokenPair {
  access: string;
  refresh: string;
}

// Every call to the database or the limiter goes through a guard: down, it answers 503, never 500.
const guard = failClosed("database");
const guardLimiter = failClosed("rate limiter");

/** Register's rule between two fields, as the API's check (src/http/schemas.ts) and this class say it. */
export const USERNAME_OR_EMAIL: FieldError = {
  field: "username",
  code: "required",
  message: "is required, or email: give a username or an email address",
};

/** A number that is not one: the same detail and field error as send-otp's, hint included. */
function invalidPhone(input: string): VericodeError {
  return new VericodeError("invalid_phone_number", invalidPhoneMessage(input), {
    extra: { errors: [invalidPhoneField("phone_number")] },
  });
}

/** What the code-based flows answer whether or not the number has an account (enumeration-safe). */
export const FLOW_STARTED = "If this number belongs to an account, a code is on its way.";

/** Users, passwords and the tokens vericode issues. Failures throw VericodeError with the contract's code. */
export class Accounts {
  readonly #store: UserStore;
  readonly #tokens: TokenService;
  readonly #clock: Clock;
  readonly #defaultCountry: CountryCode | null;
  readonly #otp: OtpService | null;
  readonly #protection: Protection | null;
  readonly #log: Logger | null;

  constructor(options: {
    store: UserStore;
    tokens: TokenService;
    clock: Clock;
    defaultCountry: CountryCode | null;
    otp?: OtpService;
    protection?: Protection;
    log?: Logger;
  }) {
    this.#store = options.store;
    this.#tokens = options.tokens;
    this.#clock = options.clock;
    this.#defaultCountry = options.defaultCountry;
    this.#otp = options.otp ?? null;
    this.#protection = options.protection ?? null;
    this.#log = options.log ?? null;
  }

  /**
   * Starts a passwordless login or a password reset: a `login` or `password_reset` code goes to the
   * number if it is an account's verified number. The answer and its timing are the same either way:
   * the send runs after the answer, so nothing tells whether an account exists.
   */
  async startFlow(purpose: "login" | "password_reset", phone: string, context: SendContext = {}): Promise<{ message: string }> {
    const number = this.#number(phone);
    // Limited per client address before anything is looked up: the same for every number.
    if (this.#protection !== null && context.ip) {
      const now = this.#clock.now().getTime();
      const consumed = await guardLimiter(this.#protection.limiter.consume(this.#protection.flowBuckets(context.ip), now));
      if (!consumed.ok) {
        throw new VericodeError("rate_limited", "Too many requests from this address. Try again later.", {
          retryAfter: Math.max(1, Math.ceil(consumed.retryAfterMs / 1000)),
          extra: { rule: consumed.rule },
        });
      }
    }
    const user = await guard(this.#store.findUserByVerifiedPhone(number));
    if (user !== null && this.#otp !== null) {
      const otp = this.#otp;
      setImmediate(() => {
        otp.sendOtp(number, user.id, purpose, context).then(
          (result) => {
            if (!result.ok) this.#log?.warn({ event: "flow.send", purpose, errorCode: result.code }, "flow code not sent");
          },
          (error: unknown) => this.#log?.error({ event: "flow.send", purpose, err: error }, "flow code not sent"),
        );
      });
    }
    return { message: FLOW_STARTED };
  }

  /** Ends a passwordless login: the `login` code of the number's account, for tokens. */
  async finishLogin(phone: string, code: string): Promise<TokenPair> {
    const user = await this.#verifyFlow("login", phone, code);
    return this.#pair(user);
  }

  /** Ends a password reset: the `password_reset` code sets the new password and revokes every refresh token. */
  async finishReset(phone: string, code: string, newPassword: string): Promise<{ message: string }> {
    const user = await this.#verifyFlow("password_reset", phone, code);
    const passwordHash = await hashPassword(newPassword);
    await guard(this.#store.setPassword(user.id, passwordHash, this.#clock.now().getTime()));
    return { message: "Password changed. Sign in again on every device." };
  }

  async #verifyFlow(purpose: "login" | "password_reset", phone: string, code: string): Promise<UserRecord> {
    if (this.#otp === null) throw new Error("Accounts was built without an OtpService: the code flows need one");
    const number = this.#number(phone);
    const user = await guard(this.#store.findUserByVerifiedPhone(number));
    // No account answers like an account with no pending code.
    if (user === null) throw new VericodeError("otp_not_found", "There is no pending code for this number. Ask for a new one.");
    const result = await this.#otp.verifyOtp(number, code, user.id, purpose);
    if (!result.ok) throw verifyError(result);
    return user;
  }

  #number(phone: string): string {
    const number = normalisePhone(phone, this.#defaultCountry);
    if (number === null) throw invalidPhone(phone);
    return number;
  }

  async register(input: Registration): Promise<{ user: PublicUser } & TokenPair> {
    const username = input.username?.trim().toLowerCase() || null;
    const email = input.email?.trim().toLowerCase() || null;
    if (username === null && email === null) throw validationError([USERNAME_OR_EMAIL]);
    let phoneNumber: string | null = null;
    if (input.phone_number !== undefined && input.phone_number !== "") {
      phoneNumber = normalisePhone(input.phone_number, this.#defaultCountry);
      if (phoneNumber === null) throw invalidPhone(input.phone_number);
    }
    const passwordHash = await hashPassword(input.password);
    const created = await guard(
      this.#store.createUser({ id: newId("usr"), username, email, passwordHash, phoneNumber, createdAt: this.#clock.now().getTime() }),
    );
    if ("conflict" in created) {
      const other = created.conflict === "username" ? "another username" : "another email address";
      throw validationError([
        { field: created.conflict, code: "already_registered", message: `is already registered: sign in, or choose ${other}` },
      ]);
    }
    return { user: publicUser(created), ...this.#pair(created) };
  }

  async login(input: { username?: string | undefined; email?: string | undefined; password: string }): Promise<TokenPair> {
    const login =
      input.username !== undefined ? { username: input.username.trim().toLowerCase() } : { email: input.email?.trim().toLowerCase() ?? "" };
    const user = await guard(this.#store.findUserByLogin(login));
    // Hash even when there is no such user, so the answer's timing does not reveal which accounts exist.
    const valid = await verifyPassword(input.password, user?.passwordHash ?? (await DUMMY_PASSWORD_HASH));
    if (user === null || !valid) throw new VericodeError("unauthorized", "Invalid username, email or password.");
    return this.#pair(user);
  }

  async refresh(token: string): Promise<{ access: string }> {
    const claims = this.#tokens.verifyRefresh(token);
    const user = await guard(this.#store.findUserById(claims.sub));
    if (user === null || user.tokenVersion !== claims.ver) throw new VericodeError("unauthorized", "The refresh token was revoked.");
    return { access: this.#tokens.issueAccess(user) };
  }

  /** Whether a local account has verified its number; null when the subject is not a local account. */
  async phoneVerified(sub: string): Promise<boolean | null> {
    const user = await guard(this.#store.findUserById(sub));
    return user === null ? null : user.phoneVerified;
  }

  /** The local user behind a token, or, for an external issuer's subject, an empty profile. */
  async me(sub: string, external: boolean): Promise<PublicUser> {
    const user = await guard(this.#store.findUserById(sub));
    if (user !== null) return publicUser(user);
    if (!external) throw new VericodeError("unauthorized", "The token's user no longer exists.");
    return { id: sub, username: null, email: null, phone_number: null, phone_verified: false };
  }

  #pair(user: UserRecord): TokenPair {
    return { access: this.#tokens.issueAccess(user), refresh: this.#tokens.issueRefresh(user) };
  }
}

export function publicUser(user: UserRecord): PublicUser {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    phone_number: user.phoneNumber,
    phone_verified: user.phoneVerified,
  };
}
