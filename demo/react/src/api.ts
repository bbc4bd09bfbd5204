import { createClient, describeError, VericodeApiError, webStorageTokenStore } from "vericode/client";

/** One client for the page; tokens live in sessionStorage, so a reload keeps the session. */
export const api = createClient({ tokens: webStorageTokenStore(sessionStorage, "vericode.react.tokens") });

export interface Notice {
  kind: "ok" | "error";
  text: string;
  code?: string;
}

/** The notice for a failure: the plain headline, the service's own words when they add something, and the code. */
export function noticeOf(error: unknown): Notice {
  if (error instanceof VericodeApiError) {
    const headline = describeError(error);
    // otp_invalid's headline already says how many tries are left.
    const repeats = error.code === "otp_invalid" || headline.includes(error.message);
    const detail = error.message !== "" && !repeats ? ` ${error.message}` : "";
    return { kind: "error", text: headline + detail, code: error.code };
  }
  return { kind: "error", text: error instanceof Error ? error.message : String(error) };
}
