import { randomUUID } from "node:crypto";
import { createSigner, createVerifier, type DecodedJwt, TokenError } from "fast-jwt";
import buildGetJwks from "get-jwks";
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

/** Asymmetric algorithms accepted from an external issuer; HS256 only with our own secret. */
const EXTERNAL_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;

type SyncVerify = (token: string) => Record<string, unknown>;
type AsyncVerify = (token: string) => Promise<Record<string, unknown>>;

/**
 * Issues and verifies vericode's tokens (HS256 under JWT_SECRET) and verifies an external issuer's
 * (RS256, ES256, EdDSA). Algorithms are allow-listed per key, so `alg: none` and algorithm confusion
 * (an HS256 token signed with a public key) are refused; `exp`, `iss` and `aud` are always checked.
 */
export class TokenService {
  readonly #signAccess: (payload: Record<string, unknown>) => string;
  readonly #signRefresh: (payload: Record<string, unknown>) => string;
  readonly #verifyOwn: SyncVerify;
  readonly #verifyExternal: AsyncVerify | null;

  constructor(jwt: Config["jwt"]) {
    const common = { iss: jwt.issuer, aud: jwt.audience };
    this.#signAccess = createSigner({ key: jwt.secret, algorithm: "HS256", expiresIn: jwt.accessTtlSeconds * 1000, ...common });
    this.#signRefresh = createSigner({ key: jwt.secret, algorithm: "HS256", expiresIn: jwt.refreshTtlSeconds * 1000, ...common });
    const checks = { allowedIss: jwt.issuer, allowedAud: jwt.audience, requiredClaims: ["exp", "sub"] };
    // The cache keeps verified tokens until their expiry: the hot path verifies a repeat token in ~1 µs.
    this.#verifyOwn = createVerifier({ key: jwt.secret, algorithms: ["HS256"], cache: 10_000, ...checks }) as SyncVerify;
    this.#verifyExternal = null;
    if (jwt.publicKey !== null) {
      const verify = createVerifier({ key: jwt.publicKey, algorithms: [...EXTERNAL_ALGORITHMS], cache: 10_000, ...checks }) as SyncVerify;
      this.#verifyExternal = async (token) => verify(token);
    } else if (jwt.jwksUrl !== null) {
      const url = new URL(jwt.jwksUrl);
      const jwks = buildGetJwks({ jwksPath: url.pathname + url.search, ttl: 10 * 60 * 1000 });
      const key = async (decoded: DecodedJwt): Promise<string> => {
        const header = decoded.header as { kid?: string; alg?: string };
        return jwks.getPublicKey({ domain: url.origin, kid: header.kid ?? "", alg: header.alg ?? "" });
      };
      this.#verifyExternal = createVerifier({ key, algorithms: [...EXTERNAL_ALGORITHMS], cache: 10_000, ...checks });
    }
  }

  issueAccess(user: { id: string; role: string }): string {
    return this.#signAccess({ sub: user.id, role: user.role, token_use: "access" });
  }

  issueRefresh(user: { id: string; tokenVersion: number }): string {
    return this.#signRefresh({ sub: user.id, token_use: "refresh", ver: user.tokenVersion, jti: randomUUID() });
  }

  /** Verifies a bearer token for the API; throws VericodeError("unauthorized") with the reason. */
  async verifyAccess(token: string): Promise<AccessClaims> {
    const alg = headerAlgorithm(token);
    let claims: Record<string, unknown>;
    let external = false;
    try {
      if (alg === "HS256") claims = this.#verifyOwn(token);
      else if (this.#verifyExternal !== null && (EXTERNAL_ALGORITHMS as readonly string[]).includes(alg ?? "")) {
        claims = await this.#verifyExternal(token);
        external = true;
      } else throw new VericodeError("unauthorized", `Tokens signed with ${JSON.stringify(alg ?? "no algorithm")} are not accepted.`);
    } catch (error) {
      throw asUnauthorized(error);
    }
    if (claims.token_use === "refresh") throw new VericodeError("unauthorized", "A refresh token cannot be used as an access token.");
    if (typeof claims.sub !== "string" || claims.sub === "") throw new VericodeError("unauthorized", "The token has no subject.");
    return { sub: claims.sub, role: typeof claims.role === "string" ? claims.role : null, external };
  }

  verifyRefresh(token: string): RefreshClaims {
    let claims: Record<string, unknown>;
    try {
      if (headerAlgorithm(token) !== "HS256") throw new VericodeError("unauthorized", "Not a vericode refresh token.");
      claims = this.#verifyOwn(token);
    } catch (error) {
      throw asUnauthorized(error);
    }
    if (claims.token_use !== "refresh" || typeof claims.sub !== "string" || typeof claims.ver !== "number") {
      throw new VericodeError("unauthorized", "Not a refresh token.");
    }
    return { sub: claims.sub, ver: claims.ver };
  }
}

/** Reads `alg` from the token's header without trusting anything else in it. */
function headerAlgorithm(token: string): string | null {
  const dot = token.indexOf(".");
  if (dot <= 0) return null;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString("utf8")) as { alg?: unknown };
    return typeof header.alg === "string" ? header.alg : null;
  } catch {
    return null;
  }
}

function asUnauthorized(error: unknown): VericodeError {
  if (error instanceof VericodeError) return error;
  if (error instanceof TokenError) {
    const reasons: Partial<Record<string, string>> = {
      FAST_JWT_EXPIRED: "The token has expired.",
      FAST_JWT_INVALID_SIGNATURE: "The token's signature is not valid.",
      FAST_JWT_INVALID_CLAIM_VALUE: "The token's issuer or audience is not accepted.",
      FAST_JWT_MISSING_REQUIRED_CLAIM: "The token lacks a required claim (exp, sub).",
      FAST_JWT_INACTIVE: "The token is not valid yet.",
      FAST_JWT_INVALID_ALGORITHM: "The token's algorithm is not accepted.",
    };
    return new VericodeError("unauthorized", reasons[error.code] ?? "The token is not valid.");
  }
  return new VericodeError("unauthorized", "The token is not valid.");
}
