import { createPublicKey, type JsonWebKey, randomUUID } from "node:crypto";
import { createSigner, createVerifier, TokenError } from "fast-jwt";
import type { Config } from "../config.js";
import { VericodeError } from "../errors.js";

export interface AccessClaims {
  sub: string;
  role: string | null;
  /** True when the token came from an external issuer (JWT_PUBLIC_KEY or JWT_JWKS_URL). */
  external: boolean;
}

export interface RefreshClaims {
  sub: string;
  ver: number;
}

/**
 * What TokenService reads of the configuration. `jwksTimeoutMs` is needed only with `jwksUrl` (a token
 * service of vericode's own tokens alone may leave it out); giving a `jwksUrl` without it is misuse.
 */
export type TokenSettings = Omit<Config["jwt"], "jwksTimeoutMs"> & Partial<Pick<Config["jwt"], "jwksTimeoutMs">>;

/**
 * A refused bearer token or Authorization header: 401 `unauthorized`, whose `WWW-Authenticate` carries
 * the RFC 6750 §3.1 error code (`invalid_token` for the token, `invalid_request` for the header).
 */
export class BearerError extends VericodeError {
  readonly bearerError: "invalid_request" | "invalid_token";

  constructor(bearerError: "invalid_request" | "invalid_token", message: string) {
    super("unauthorized", message);
    this.bearerError = bearerError;
  }
}

/** Verified tokens of ours kept by TokenService (about 300 bytes each). */
const VERIFIED_KEPT = 1000;

/** Asymmetric algorithms accepted from an external issuer; HS256 only with our own secret. */
const EXTERNAL_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;
type ExternalAlgorithm = (typeof EXTERNAL_ALGORITHMS)[number];

/** An unknown `kid` may cause one JWKS fetch per 30 s for the whole process, so a flood of made-up kids cannot hammer the issuer. */
const JWKS_COOLDOWN_MS = 30_000;
/** How long a JWKS answer is kept when its Cache-Control gives no max-age. */
const JWKS_DEFAULT_MAX_AGE_MS = 10 * 60_000;
/** The longest a JWKS answer is kept whatever its Cache-Control says, so that a key the issuer removed dies within a day. */
const JWKS_MAX_AGE_CAP_MS = 24 * 60 * 60_000;
/** Keys read from one JWKS answer, at most: an issuer publishes two or three. */
const JWKS_MAX_KEYS = 100;

type SyncVerify = (token: string) => Record<string, unknown>;
type Checks = { allowedIss: string; allowedAud: string; requiredClaims: string[] };

/**
 * Issues and verifies vericode's tokens (HS256 under JWT_SECRET) and verifies an external issuer's
 * (RS256, ES256, EdDSA). Algorithms are allow-listed per key, so `alg: none` and algorithm confusion
 * (an HS256 token signed with a public key) are refused; `exp`, `iss` and `aud` are always checked.
 */
export class TokenService {
  readonly #signAccess: (payload: Record<string, unknown>) => string;
  readonly #signRefresh: (payload: Record<string, unknown>) => string;
  readonly #verifyOwn: SyncVerify;
  readonly #verifyPublicKey: SyncVerify | null = null;
  readonly #jwks: JwksKeys | null = null;
  /**
   * Access tokens of ours (HS256 under JWT_SECRET) that verified, by their text, with their claims and
   * expiry: a client's next request with the same token is one Map lookup. fast-jwt's cache below gives
   * the same answer, but hashes the token with SHA-256 first, and the header was decoded before it
   * (measured together: about 10 µs of a request's CPU). An external issuer's tokens are not kept here:
   * a key its JWKS drops must stop them when the set is read again, as fast-jwt's per-key caches do.
   */
  readonly #verified = new Map<string, { claims: AccessClaims; until: number }>();

  constructor(jwt: TokenSettings) {
    const common = { iss: jwt.issuer, aud: jwt.audience };
    this.#signAccess = createSigner({ key: jwt.secret, algorithm: "HS256", expiresIn: jwt.accessTtlSeconds * 1000, ...common });
    this.#signRefresh = createSigner({ key: jwt.secret, algorithm: "HS256", expiresIn: jwt.refreshTtlSeconds * 1000, ...common });
    const checks: Checks = { allowedIss: jwt.issuer, allowedAud: jwt.audience, requiredClaims: ["exp", "sub"] };
    // The cache keeps verified tokens until their expiry: the hot path verifies a repeat token in ~1 µs.
    this.#verifyOwn = createVerifier({ key: jwt.secret, algorithms: ["HS256"], cache: 10_000, ...checks }) as SyncVerify;
    if (jwt.publicKey !== null) {
      this.#verifyPublicKey = createVerifier({
        key: jwt.publicKey,
        algorithms: [...EXTERNAL_ALGORITHMS],
        cache: 10_000,
        ...checks,
      }) as SyncVerify;
    } else if (jwt.jwksUrl !== null) {
      if (jwt.jwksTimeoutMs === undefined) throw new TypeError("TokenService: jwksUrl needs jwksTimeoutMs.");
      this.#jwks = new JwksKeys(jwt.jwksUrl, jwt.jwksTimeoutMs, checks);
    }
  }

  issueAccess(user: { id: string; role: string }): string {
    return this.#signAccess({ sub: user.id, role: user.role, token_use: "access" });
  }

  issueRefresh(user: { id: string; tokenVersion: number }): string {
    return this.#signRefresh({ sub: user.id, token_use: "refresh", ver: user.tokenVersion, jti: randomUUID() });
  }

  /** Verifies a bearer token for the API; throws a BearerError (`unauthorized`, `invalid_token`) naming the fault. */
  async verifyAccess(token: string): Promise<AccessClaims> {
    const known = this.#verified.get(token);
    if (known !== undefined) {
      // Checked on every use: a token stops passing at its expiry, as fast-jwt's cache would have it.
      if (Date.now() < known.until) return known.claims;
      this.#verified.delete(token);
    }
    const header = readHeader(token);
    let claims: Record<string, unknown>;
    try {
      claims = await this.#verify(token, header);
    } catch (error) {
      throw refusal(error);
    }
    if (claims.token_use === "refresh") throw new BearerError("invalid_token", "A refresh token cannot be used as an access token.");
    if (typeof claims.sub !== "string" || claims.sub === "") throw new BearerError("invalid_token", "The token has no subject.");
    const access: AccessClaims = Object.freeze({
      sub: claims.sub,
      role: typeof claims.role === "string" ? claims.role : null,
      external: header.alg !== "HS256",
    });
    if (!access.external && typeof claims.exp === "number") this.#remember(token, access, claims.exp * 1000);
    return access;
  }

  /** Keeps a verified token of ours (#verified), the oldest going first past VERIFIED_KEPT. */
  #remember(token: string, claims: AccessClaims, until: number): void {
    if (this.#verified.size >= VERIFIED_KEPT) this.#verified.delete(this.#verified.keys().next().value as string);
    this.#verified.set(token, { claims, until });
  }

  verifyRefresh(token: string): RefreshClaims {
    let claims: Record<string, unknown>;
    try {
      if (readHeader(token).alg !== "HS256") throw new VericodeError("unauthorized", "Not a vericode refresh token.");
      claims = this.#verifyOwn(token);
    } catch (error) {
      // The refresh token comes in the body, not as a bearer credential: a plain 401, no RFC 6750 error code.
      throw new VericodeError("unauthorized", refusal(error).message);
    }
    if (claims.token_use !== "refresh" || typeof claims.sub !== "string" || typeof claims.ver !== "number") {
      throw new VericodeError("unauthorized", "Not a refresh token.");
    }
    return { sub: claims.sub, ver: claims.ver };
  }

  #verify(token: string, header: TokenHeader): Record<string, unknown> | Promise<Record<string, unknown>> {
    if (header.alg === "HS256") return this.#verifyOwn(token);
    const external = (EXTERNAL_ALGORITHMS as readonly string[]).includes(header.alg);
    if (external && this.#verifyPublicKey !== null) return this.#verifyPublicKey(token);
    if (external && this.#jwks !== null) {
      const verifier = this.#jwks.verifierFor(header.kid, header.alg);
      // A known key verifies at once: only a token whose key is not known yet waits for a fetch.
      return typeof verifier === "function" ? verifier(token) : verifier.then((verify) => verify(token));
    }
    throw new BearerError("invalid_token", `Tokens signed with ${JSON.stringify(header.alg.slice(0, 16))} are not accepted.`);
  }
}

interface TokenHeader {
  alg: string;
  kid: string | null;
}

/** Reads `alg` and `kid` from the token's header without trusting anything else in it. */
function readHeader(token: string): TokenHeader {
  const parts = token.split(".");
  let header: unknown = null;
  try {
    if (parts.length === 3) header = JSON.parse(Buffer.from(parts[0] as string, "base64url").toString("utf8"));
  } catch {
    // Not JSON: refused just below.
  }
  if (typeof header !== "object" || header === null) {
    throw new BearerError("invalid_token", "The token is malformed: a JWT is three base64url parts, the first a JSON header.");
  }
  const { alg, kid } = header as { alg?: unknown; kid?: unknown };
  if (typeof alg !== "string") throw new BearerError("invalid_token", "The token's header names no algorithm (alg).");
  return { alg, kid: typeof kid === "string" ? kid : null };
}

/** fast-jwt's verdicts in plain words; anything else unknown stays vague rather than leak internals. */
function refusal(error: unknown): VericodeError {
  if (error instanceof VericodeError) return error;
  if (!(error instanceof TokenError)) return new BearerError("invalid_token", "The token is not valid.");
  const claim = /\b(iss|aud|exp|sub|nbf|iat)\b/.exec(error.message)?.[1];
  switch (error.code) {
    case TokenError.codes.malformed:
    case TokenError.codes.invalidType:
    case TokenError.codes.invalidPayload:
      return new BearerError("invalid_token", "The token is malformed: its parts are not base64url JSON.");
    case TokenError.codes.invalidSignature:
    case TokenError.codes.missingSignature:
      return new BearerError("invalid_token", "The token's signature is not valid.");
    case TokenError.codes.expired:
      return new BearerError("invalid_token", "The token has expired.");
    case TokenError.codes.inactive:
      return new BearerError("invalid_token", "The token is not valid yet.");
    case TokenError.codes.invalidAlgorithm:
      return new BearerError("invalid_token", "The token's algorithm is not accepted for its key.");
    case TokenError.codes.invalidClaimValue:
      if (claim === "iss") return new BearerError("invalid_token", "The token's issuer (iss) is not accepted.");
      if (claim === "aud") return new BearerError("invalid_token", "The token's audience (aud) is not accepted.");
      return new BearerError("invalid_token", `The token's ${claim ?? "claims"} claim is not valid.`);
    case TokenError.codes.invalidClaimType:
      return new BearerError("invalid_token", `The token's ${claim ?? "claims"} claim has the wrong type.`);
    case TokenError.codes.missingRequiredClaim:
      return new BearerError("invalid_token", `The token lacks a required claim (${claim ?? "exp, sub"}).`);
    default:
      return new BearerError("invalid_token", "The token is not valid.");
  }
}

/**
 * An external issuer's keys, read from its JWKS (JWT_JWKS_URL), each with a fast-jwt verifier of its own.
 * A set is kept as long as the answer's Cache-Control max-age says (10 minutes without one, a day at
 * most). Any fetch, for a stale set or an unknown `kid`, starts at most once per 30 s for the whole
 * process, and concurrent callers share it; a fetch that has not answered within `timeoutMs` is
 * abandoned. Keys already known keep working while the set is refreshed and while the JWKS is down.
 */
class JwksKeys {
  readonly #url: string;
  readonly #timeoutMs: number;
  readonly #checks: Checks;
  /** `${alg} ${kid}` → the verifier of that key. */
  #verifiers = new Map<string, SyncVerify>();
  #freshUntil = 0;
  #lastFetchAt = Number.NEGATIVE_INFINITY;
  #lastFetchFailed = false;
  #pending: Promise<void> | null = null;

  constructor(url: string, timeoutMs: number, checks: Checks) {
    this.#url = url;
    this.#timeoutMs = timeoutMs;
    this.#checks = checks;
  }

  /**
   * The verifier of the key `kid` for `alg`: at once when the key is known, else after the fetch this call
   * starts or joins. Refuses (BearerError) a key the issuer does not publish.
   */
  verifierFor(kid: string | null, alg: string): SyncVerify | Promise<SyncVerify> {
    // A token without kid can match no key: refused without a fetch.
    if (kid === null) throw new BearerError("invalid_token", "The token's header names no signing key (kid).");
    const id = `${alg} ${kid}`;
    const known = this.#verifiers.get(id);
    const now = Date.now();
    if (known !== undefined && now < this.#freshUntil) return known;
    if (this.#pending === null && now - this.#lastFetchAt >= JWKS_COOLDOWN_MS) this.#fetch(now);
    // A known key is not held up by the refresh of a stale set, nor refused while the JWKS is down.
    return known ?? this.#afterFetch(id);
  }

  async #afterFetch(id: string): Promise<SyncVerify> {
    if (this.#pending !== null) await this.#pending;
    const fetched = this.#verifiers.get(id);
    if (fetched !== undefined) return fetched;
    throw new BearerError(
      "invalid_token",
      this.#lastFetchFailed
        ? "The token's signing key (kid) is unknown, and the issuer's key set could not be fetched."
        : "The token's signing key (kid) is not among the issuer's published keys.",
    );
  }

  #fetch(now: number): void {
    this.#lastFetchAt = now;
    const pending = this.#load().then(
      () => {
        this.#lastFetchFailed = false;
      },
      () => {
        // The keys already known stay; the next fetch waits for the cooldown.
        this.#lastFetchFailed = true;
      },
    );
    this.#pending = pending;
    void pending.finally(() => {
      if (this.#pending === pending) this.#pending = null;
    });
  }

  async #load(): Promise<void> {
    // The deadline covers the headers and the body: a JWKS that never answers frees its callers in timeoutMs.
    const response = await fetch(this.#url, { signal: AbortSignal.timeout(this.#timeoutMs), headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`The JWKS answered ${response.status}.`);
    const body = (await response.json()) as { keys?: unknown };
    if (!Array.isArray(body.keys)) throw new Error("The JWKS has no keys array.");
    const verifiers = new Map<string, SyncVerify>();
    for (const jwk of body.keys.slice(0, JWKS_MAX_KEYS)) {
      const key = readJwk(jwk);
      if (key === null) continue;
      const verify = createVerifier({ key: key.pem, algorithms: [key.alg], cache: 10_000, ...this.#checks }) as SyncVerify;
      verifiers.set(`${key.alg} ${key.kid}`, verify);
    }
    this.#verifiers = verifiers;
    this.#freshUntil = Date.now() + maxAge(response.headers.get("cache-control"));
  }
}

/** A signing key of a JWKS as PEM, with the one algorithm it may verify; null for any other entry. */
function readJwk(jwk: unknown): { kid: string; alg: ExternalAlgorithm; pem: string } | null {
  if (typeof jwk !== "object" || jwk === null) return null;
  const { kid, kty, crv, use, alg } = jwk as Record<string, unknown>;
  if (typeof kid !== "string" || (use !== undefined && use !== "sig")) return null;
  const implied: ExternalAlgorithm | null =
    kty === "RSA" ? "RS256" : kty === "EC" && crv === "P-256" ? "ES256" : kty === "OKP" && crv === "Ed25519" ? "EdDSA" : null;
  // A key bound to another algorithm than its type implies (RS384, ES512…) is not one vericode accepts.
  if (implied === null || (alg !== undefined && alg !== implied)) return null;
  try {
    const pem = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" }).export({ type: "spki", format: "pem" });
    return { kid, alg: implied, pem: pem.toString() };
  } catch {
    return null;
  }
}

/** Cache-Control's max-age in ms (`no-store` and `no-cache` count as 0); 10 minutes without one, a day at most. */
function maxAge(cacheControl: string | null): number {
  if (cacheControl === null) return JWKS_DEFAULT_MAX_AGE_MS;
  if (/\bno-(store|cache)\b/i.test(cacheControl)) return 0;
  const seconds = /\bmax-age\s*=\s*"?(\d+)/i.exec(cacheControl)?.[1];
  return seconds === undefined ? JWKS_DEFAULT_MAX_AGE_MS : Math.min(Number(seconds) * 1000, JWKS_MAX_AGE_CAP_MS);
}
