import { type FormEvent, type ReactNode, useEffect, useRef, useState } from "react";

interface CodeStepProps {
  id: string;
  children: ReactNode;
  submitLabel: string;
  busy: boolean;
  onSubmit(code: string, form: FormData): void;
  /** When given, a resend button, held until this ISO time. */
  resendAfter?: string | null;
  onResend?(): void;
  /** More fields (a new password). */
  extra?: ReactNode;
}

/**
 * The step where a person types the code: `autocomplete="one-time-code"` for the keyboard's suggestion,
 * and the WebOTP API where the browser has it (Chrome on Android reads an SMS ending in `@host #code`).
 */
export function CodeStep({ id, children, submitLabel, busy, onSubmit, resendAfter, onResend, extra }: CodeStepProps) {
  const input = useRef<HTMLInputElement>(null);
  const form = useRef<HTMLFormElement>(null);
  const left = useCountdown(resendAfter ?? null);

  useEffect(() => {
    input.current?.focus();
    if (!("OTPCredential" in window)) return;
    const abort = new AbortController();
    navigator.credentials
      .get({ otp: { transport: ["sms"] }, signal: abort.signal } as CredentialRequestOptions)
      .then((credential) => {
        const code = (credential as { code?: string } | null)?.code;
        if (code !== undefined && input.current !== null) {
          input.current.value = code;
          form.current?.requestSubmit();
        }
      })
      .catch(() => {});
    return () => abort.abort();
  }, []);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    onSubmit(String(data.get("code") ?? "").trim(), data);
  };

  return (
    <form id={id} ref={form} className="code-step" noValidate onSubmit={submit}>
      <p>{children}</p>
      <label>
        Code <input ref={input} name="code" autoComplete="one-time-code" inputMode="numeric" pattern="[0-9]*" maxLength={10} required />
      </label>
      {extra}
      <button type="submit" disabled={busy}>
        {submitLabel}
      </button>
      {onResend !== undefined && (
        <button type="button" className="secondary" data-action="resend" disabled={busy || left > 0} onClick={onResend}>
          {left > 0 ? `Send a new code (${left} s)` : "Send a new code"}
        </button>
      )}
    </form>
  );
}

/** Whole seconds until `until`, ticking each second. */
function useCountdown(until: string | null): number {
  const [left, setLeft] = useState(() => secondsUntil(until));
  useEffect(() => {
    setLeft(secondsUntil(until));
    if (until === null) return;
    const timer = setInterval(() => setLeft(secondsUntil(until)), 1000);
    return () => clearInterval(timer);
  }, [until]);
  return left;
}

function secondsUntil(until: string | null): number {
  return until === null ? 0 : Math.max(0, Math.ceil((new Date(until).getTime() - Date.now()) / 1000));
}
