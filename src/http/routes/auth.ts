import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Vericode } from "../../vericode.js";
import { bearerAuth, subject } from "../auth.js";
import { IdempotencyHeaders, idempotent } from "../idempotency.js";
import { methodNotAllowed } from "../method-not-allowed.js";
import {
  AccessAnswer,
  FlowStartBody,
  FlowStarted,
  LoginOtpBody,
  problems,
  RefreshBody,
  RegisterAnswer,
  RegisterBody,
  ResetConfirmBody,
  ResetDone,
  TokenBody,
  TokenPair,
  User,
} from "../schemas.js";
import { answerEveryField } from "../validation.js";

export const authRoutes: FastifyPluginAsyncTypebox<{ vericode: Vericode }> = async (app, { vericode }) => {
  const { accounts } = vericode;
  answerEveryField(app, vericode);
  const refuseOtherMethods = methodNotAllowed(app);
  // A flow start has no token: its Idempotency-Key is the client address's.
  const loginOnce = idempotent(vericode, "login-otp", (request) => `ip:${request.ip}`);
  const resetOnce = idempotent(vericode, "password-reset", (request) => `ip:${request.ip}`);

  app.post(
    "/api/v1/auth/register/",
    {
      schema: {
        tags: ["auth"],
        summary: "Create an account (username or email, password, optional phone number)",
        body: RegisterBody,
        response: { 201: RegisterAnswer, ...problems(400, 413, 415, 503) },
      },
    },
    async (request, reply) => reply.code(201).send(await accounts.register(request.body)),
  );

  app.post(
    "/api/v1/auth/token/",
    {
      schema: {
        tags: ["auth"],
        summary: "Exchange a username or email and a password for tokens",
        body: TokenBody,
        response: { 200: TokenPair, ...problems(400, 401, 503) },
      },
    },
    // One of username and email: TokenBody's check refused the request before it came here otherwise.
    async (request) => accounts.login(request.body),
  );

  app.post(
    "/api/v1/auth/token/refresh/",
    {
      schema: {
        tags: ["auth"],
        summary: "Exchange a refresh token for a new access token",
        body: RefreshBody,
        response: { 200: AccessAnswer, ...problems(400, 401, 503) },
      },
    },
    async (request) => accounts.refresh(request.body.refresh),
  );

  app.get(
    "/api/v1/auth/me/",
    {
      preHandler: bearerAuth(vericode.tokens),
      schema: {
        tags: ["auth"],
        summary: "The authenticated user",
        security: [{ bearer: [] }],
        response: { 200: User, ...problems(401, 503) },
      },
    },
    async (request) => {
      const auth = subject(request);
      return accounts.me(auth.sub, auth.external);
    },
  );

  const context = (request: { ip: string; headers: Record<string, string | string[] | undefined> }) => ({
    ip: request.ip,
    acceptLanguage: typeof request.headers["accept-language"] === "string" ? request.headers["accept-language"] : null,
  });

  app.post(
    "/api/v1/auth/login/otp/",
    {
      schema: {
        tags: ["auth"],
        summary: "Passwordless login, step 1: send a login code to an account's verified number",
        description:
          "Always 202 with the same message, whether or not the number belongs to an account (no enumeration). Limited per client address (RATE_LIMIT_IP, apart from the sends'): 429 rate_limited, the same for every number.",
        headers: IdempotencyHeaders,
        body: FlowStartBody,
        response: { 202: FlowStarted, ...problems(400, 409, 413, 415, 422, 429, 503) },
      },
      preHandler: loginOnce.preHandler,
      onSend: loginOnce.onSend,
    },
    async (request, reply) => {
      const started = await accounts.startFlow("login", request.body.phone_number, context(request));
      return reply.code(202).send({ success: true as const, ...started });
    },
  );

  app.post(
    "/api/v1/auth/login/otp/verify/",
    {
      schema: {
        tags: ["auth"],
        summary: "Passwordless login, step 2: the code for tokens",
        body: LoginOtpBody,
        response: { 200: TokenPair, ...problems(400, 413, 415, 429, 503) },
      },
    },
    async (request) => accounts.finishLogin(request.body.phone_number, request.body.otp_code),
  );

  app.post(
    "/api/v1/auth/password-reset/",
    {
      schema: {
        tags: ["auth"],
        summary: "Password reset, step 1: send a reset code to an account's verified number",
        description:
          "Always 202 with the same message, whether or not the number belongs to an account (no enumeration). Limited per client address (RATE_LIMIT_IP, apart from the sends'): 429 rate_limited, the same for every number.",
        headers: IdempotencyHeaders,
        body: FlowStartBody,
        response: { 202: FlowStarted, ...problems(400, 409, 413, 415, 422, 429, 503) },
      },
      preHandler: resetOnce.preHandler,
      onSend: resetOnce.onSend,
    },
    async (request, reply) => {
      const started = await accounts.startFlow("password_reset", request.body.phone_number, context(request));
      return reply.code(202).send({ success: true as const, ...started });
    },
  );

  app.post(
    "/api/v1/auth/password-reset/confirm/",
    {
      schema: {
        tags: ["auth"],
        summary: "Password reset, step 2: the code and a new password",
        description: "Sets the password and revokes every refresh token of the account.",
        body: ResetConfirmBody,
        response: { 200: ResetDone, ...problems(400, 413, 415, 429, 503) },
      },
    },
    async (request) => ({
      success: true as const,
      ...(await accounts.finishReset(request.body.phone_number, request.body.otp_code, request.body.new_password)),
    }),
  );

  refuseOtherMethods();
};
