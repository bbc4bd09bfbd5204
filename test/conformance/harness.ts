import { afterAll, beforeAll, it } from "vitest";

/**
 * The set-up every conformance suite shares: `make` builds the subject once for the suite (or answers
 * null when its backing service is absent outside CI, which skips every test), and the returned `test`
 * registers a test against it.
 */
export function conformance<T>(make: () => Promise<{ subject: T; cleanup: () => Promise<void> } | null>) {
  let subject: T | undefined;
  let cleanup: () => Promise<void> = async () => {};
  let skip = false;

  beforeAll(async () => {
    const made = await make();
    if (made === null) {
      skip = true;
      return;
    }
    ({ subject, cleanup } = made);
  });
  afterAll(async () => cleanup());

  return {
    test: (title: string, body: () => Promise<void>) =>
      it(title, async (context) => {
        if (skip) context.skip();
        await body();
      }),
    /** The subject, usable at declaration time: every property is read from it once it is built. */
    subject: new Proxy({} as T & object, {
      get: (_target, name) => {
        const built = subject as T & object;
        const value: unknown = Reflect.get(built, name, built);
        return typeof value === "function" ? value.bind(built) : value;
      },
    }) as T,
  };
}
