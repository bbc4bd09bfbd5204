import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { VericodeError } from "../../errors.js";
import type { Vericode } from "../../vericode.js";
import { bearerAuth, subject } from "../auth.js";
import { AccessAnswer, problems, RefreshBody, RegisterAnswer, RegisterBody, TokenBody, TokenPair, User } from "../schemas.js";

export const authRoutes: FastifyPluginAsyncTypebox<{ vericode: Vericode }> = async (app, { vericode }) => {
  const { accounts } = vericode;

  app.post(
    "/api/v1/auth/register/",
    {
      schema: {
        tags: ["auth"],
        summary: "Create an account (username or email, password, optional phone number)",
        body: RegisterBody,
        response: { 201: RegisterAnswer, ...problems(400, 413, 415) },
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
        response: { 200: TokenPair, ...problems(400, 401) },
      },
    },
    async (request) => {
      const { username, email, password } = request.body;
      if ((username === undefined) === (email === undefined)) {
        throw new VericodeError("validation_error", "Give either a username or an email, with the password.", {
          extra: { errors: [{ field: "username", message: "exactly one of username and email is required" }] },
        });
      }
      return accounts.login({ username, email, password });
    },
  );

  app.post(
    "/api/v1/auth/token/refresh/",
    {
      schema: {
        tags: ["auth"],
        summary: "Exchange a refresh token for a new access token",
        body: RefreshBody,
        response: { 200: AccessAnswer, ...problems(400, 401) },
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
        response: { 200: User, ...problems(401) },
      },
    },
    async (request) => {
      const auth = subject(request);
      return accounts.me(auth.sub, auth.external);
    },
  );
};
