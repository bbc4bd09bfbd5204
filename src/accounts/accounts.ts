import type { CountryCode } from "libphonenumber-js/max";
import type { Clock } from "../clock.js";
import { VericodeError } from "../errors.js";
import { newId } from "../ids.js";
import { normalisePhone } from "../phone.js";
import type { Store, UserRecord } from "../store/store.js";
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

/** Users, passwords and the tokens vericode issues. Failures throw VericodeError with the contract's code. */
export class Accounts {
  readonly #store: Store;
  readonly #tokens: TokenService;
  readonly #clock: Clock;
  readonly #defaultCountry: CountryCode | null;

  constructor(options: { store: Store; tokens: TokenService; clock: Clock; defaultCountry: CountryCode | null }) {
    this.#store = options.store;
    this.#tokens = options.tokens;
    this.#clock = options.clock;
    this.#defaultCountry = options.defaultCountry;
  }

  async register(input: Registration): Promise<{ user: PublicUser } & TokenPair> {
    const username = input.username?.trim().toLowerCase() || null;
    const email = input.email?.trim().toLowerCase() || null;
    if (username === null && email === null) {
      throw new VericodeError("validation_error", "Give a username or an email.", {
        extra: { errors: [{ field: "username", message: "a username or an email is required" }] },
      });
    }
    let phoneNumber: string | null = null;
    if (input.phone_number !== undefined && input.phone_number !== "") {
      phoneNumber = normalisePhone(input.phone_number, this.#defaultCountry);
      if (phoneNumber === null) {
        throw new VericodeError("invalid_phone_number", `${JSON.stringify(input.phone_number)} is not a valid phone number.`);
      }
    }
    const created = await this.#store.createUser({
      id: newId("usr"),
      username,
      email,
      passwordHash: await hashPassword(input.password),
      phoneNumber,
      createdAt: this.#clock.now().getTime(),
    });
    if ("conflict" in created) {
      throw new VericodeError("validation_error", `That ${created.conflict} is already registered.`, {
        extra: { errors: [{ field: created.conflict, message: "already registered" }] },
      });
    }
    return { user: publicUser(created), ...this.#pair(created) };
  }

  async login(input: { username?: string | undefined; email?: string | undefined; password: string }): Promise<TokenPair> {
    const login =
      input.username !== undefined ? { username: input.username.trim().toLowerCase() } : { email: input.email?.trim().toLowerCase() ?? "" };
    const user = await this.#store.findUserByLogin(login);
    // Hash even when there is no such user, so the answer's timing does not reveal which accounts exist.
    const valid = await verifyPassword(input.password, user?.passwordHash ?? (await DUMMY_PASSWORD_HASH));
    if (user === null || !valid) throw new VericodeError("unauthorized", "Invalid username, email or password.");
    return this.#pair(user);
  }

  async refresh(token: string): Promise<{ access: string }> {
    const claims = this.#tokens.verifyRefresh(token);
    const user = await this.#store.findUserById(claims.sub);
    if (user === null || user.tokenVersion !== claims.ver) throw new VericodeError("unauthorized", "The refresh token was revoked.");
    return { access: this.#tokens.issueAccess(user) };
  }

  /** The local user behind a token, or, for an external issuer's subject, an empty profile. */
  async me(sub: string, external: boolean): Promise<PublicUser> {
    const user = await this.#store.findUserById(sub);
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
