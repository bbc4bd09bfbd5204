import { type FormEvent, type ReactNode, useEffect, useRef, useState } from "react";
import { Field } from "./Field.js";

interface CodeStepProps {
  id: string;
  children: ReactNode;
  submitLabel: string;
  busy: boolean;
  /** The typed code, the form's data (more fields) and the form itself (for its field errors). */
  onSubmit(code: string, data: FormData, form: HTMLFormElement): void;
  /** When given, a resend button, held until this ISO time. */
  resendAfter?: string | null;
  onResend?(form: HTMLFormElement | null): void;
  /** When given, a "Use another number" button that goes back to the flow's form. */
  onBack?(): void;
  /** A paragraph under the first (the delivery's state). */
  intro?: ReactNode;
  /** More fields (a new password). */
  extra?: ReactNode;
}

function codeInput(form: HTMLFormElement | null): HTMLInputElement | null {
  const input = form?.elements.namedItem("code");
  return input instanceof HTMLInputElement ? input : null;
}

/**
 * The step where a person types the code: `autocomplete="one-time-code"` for the keyboard's suggestion,
 * and the WebOTP API where the browser has it (Chrome on Android reads an SMS ending in `@host #code`).
 */
export function CodeStep({ id, children, submitLabel, busy, onSubmit, resendAfter, onResend, onBack, intro, extra }: CodeStepProps) {
  const form = useRef<HTMLFormElement>(null);
  const left = useCountdown(resendAfter ?? null);

  useEffect(() => {
    codeInput(form.current)?.focus();
    if (!("OTPCredential" in window)) return;
    const abort = new AbortController();
    navigator.credentials
      .get({ otp: { transport: ["sms"] }, signal: abort.signal } as CredentialRequestOptions)
      .then((credential) => {
        const code = (credential as { code?: string } | null)?.code;
        const input = codeInput(form.current);
        if (code !== undefined && input !== null) {
          input.value = code;
          form.current?.requestSubmit();
        }
      })
      .catch(() => {});
    return () => abort.abort();
  }, []);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    onSubmit(String(data.get("code") ?? "").trim(), data, event.currentTarget);
  };

  return (
    <form id={id} ref={form} className="code-step" noValidate onSubmit={submit}>
      <p>{children}</p>
      {intro}
      <Field form={id} label="Code" name="code" autoComplete="one-time-code" inputMode="numeric" pattern="[0-9]*" maxLength={10} required />
      {extra}
      <button type="submit" disabled={busy}>
        {submitLabel}
      </button>
      {onResend !== undefined && (
        <button type="button" className="secondary" data-action="resend" disabled={busy || left > 0} onClick={() => onResend(form.current)}>
          {left > 0 ? `Send a new code (${left} s)` : "Send a new code"}
        </button>
      )}
      {onBack !== undefined && (
        <button type="button" className="secondary" data-action="back" onClick={onBack}>
          Use another number
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
