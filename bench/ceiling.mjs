// The ceiling: a bare Fastify route that parses the same JSON body and answers a small JSON object.
import Fastify from "fastify";

const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
app.post("/ceiling", async (request) => ({ success: true, echo: typeof request.body === "object" }));
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1" });
process.stdout.write(`${JSON.stringify({ listening: address })}\n`);
process.on("SIGTERM", () => app.close().then(() => process.exit(0)));
