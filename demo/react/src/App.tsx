import { type FormEvent, type ReactNode, useCallback, useEffect, useState } from "react";
import type { Purpose, User } from "vericode/client";
import { api, type Delivery, deliveryOf, type FormErrors, type Notice, noticeOf, placeFieldErrors } from "./api.js";
import { CodeStep } from "./CodeStep.js";
import { Field, FieldErrors } from "./Field.js";

/** Every panel; the code login and the reset are ways of signing in, under the "Sign in" tab. */
type Panel = "register" | "signin" | "passwordless" | "reset" | "codes";

/** Three tabs fit one row on a 390 px phone. */
const TABS: [Panel, string][] = [
  ["register", "Register"],
  ["signin", "Sign in"],
  ["codes", "Send a code"],
];
const TAB_OF: Partial<Record<Panel, Panel>> = { passwordless: "signin", reset: "signin" };

/** Shared by the panels: the notice line, the signed-in user, and a way to run an action with both. */
interface Shell {
  busy: boolean;
  /** Runs an action; a failure's field errors go beside the inputs of `form`, the rest to the notice. */
  run(action: () => Promise<void>, form?: HTMLFormElement | null): void;
  say(text: string): void;
  /** Hides the notice: the screen says what happened in its own place. */
  quiet(): void;
  reloadUser(): Promise<User | null>;
  openPanel(panel: Panel): void;
}

export function App() {
  const [panel, setPanel] = useState<Panel>("register");
  const [user, setUser] = useState<User | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [fieldErrors, setFieldErrors] = useState<FormErrors | null>(null);
  const [busy, setBusy] = useState(false);
  const [ready, setReady] = useState(false);

  const reloadUser = useCallback(async () => {
    if (api.tokens === null) {
      setUser(null);
      return null;
    }
    try {
      const me = await api.me();
      setUser(me);
      return me;
    } catch {
      setUser(null);
      return null;
    }
  }, []);

  useEffect(() => {
    reloadUser().finally(() => setReady(true));
  }, [reloadUser]);

  // The first field with an error takes the focus, as in the HTML demo.
  useEffect(() => {
    if (fieldErrors === null) return;
    document.querySelector<HTMLElement>(`#${fieldErrors.form} [aria-invalid="true"]`)?.focus();
  }, [fieldErrors]);

  const clearFieldError = useCallback((form: string, name: string) => {
    setFieldErrors((current) => {
      if (current === null || current.form !== form || current.fields[name] === undefined) return current;
      const { [name]: _gone, ...fields } = current.fields;
      return Object.keys(fields).length === 0 ? null : { form, fields };
    });
  }, []);

  const shell: Shell = {
    busy,
    run: (action, form = null) => {
      setBusy(true);
      setFieldErrors(null);
      action()
        .catch((error: unknown) => {
          const { placed, rest } = placeFieldErrors(error, form);
          setFieldErrors(placed);
          setNotice(noticeOf(error, placed, rest));
        })
        .finally(() => setBusy(false));
    },
    say: (text) => setNotice({ kind: "ok", text }),
    quiet: () => setNotice(null),
    reloadUser,
    openPanel: (next) => {
      setFieldErrors(null);
      setPanel(next);
    },
  };
  const tab = TAB_OF[panel] ?? panel;

  return (
    <div data-ready={ready ? "true" : undefined} id="app">
      <header>
        <h1>vericode</h1>
        <p className="lead">The React demo: the same flows, on the typed client `vericode/client`.</p>
        <div id="session" className="session" data-testid="session" data-state={sessionState(user)} aria-live="polite">
          {user === null ? "Not signed in." : sessionText(user)}
        </div>
      </header>

      <nav aria-label="Flows">
        {TABS.map(([name, label]) => (
          <button key={name} type="button" data-tab={name} aria-pressed={tab === name} onClick={() => shell.openPanel(name)}>
            {label}
          </button>
        ))}
      </nav>

      {notice !== null && (
        <div
          id="notice"
          className={`notice ${notice.kind}`}
          role={notice.kind === "error" ? "alert" : "status"}
          data-code={notice.code ?? ""}
        >
          {notice.text}
          {notice.code !== undefined && (
            <>
              {" "}
              <code>{notice.code}</code>
            </>
          )}
        </div>
      )}

      <FieldErrors.Provider value={{ errors: fieldErrors, clear: clearFieldError }}>
        <main>
          {panel === "register" && <RegisterPanel shell={shell} />}
          {panel === "signin" && <SignInPanel shell={shell} signedIn={user !== null} onSignOut={() => setUser(null)} />}
          {panel === "passwordless" && <PasswordlessPanel shell={shell} />}
          {panel === "reset" && <ResetPanel shell={shell} />}
          {panel === "codes" && <CodesPanel shell={shell} />}
        </main>
      </FieldErrors.Provider>

      <footer>
        <a href="/docs">API reference</a>
      </footer>
    </div>
  );
}

function sessionState(user: User | null): string {
  if (user === null) return "signed-out";
  return user.phone_verified ? "verified" : "unverified";
}

function sessionText(user: User): string {
  const phone =
    user.phone_number === null ? "no phone number" : `${user.phone_number} (${user.phone_verified ? "verified" : "not verified"})`;
  return `Signed in as ${user.username ?? user.email} · ${phone}`;
}

/** Reads a submitted form's fields as trimmed strings, and hands back the form for its field errors. */
function fields(event: FormEvent<HTMLFormElement>): [(name: string) => string, HTMLFormElement] {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  return [(name) => String(data.get(name) ?? "").trim(), form];
}

type RegisterStep = "form" | "code" | "done";

function RegisterPanel({ shell }: { shell: Shell }) {
  const [step, setStep] = useState<RegisterStep>("form");
  const [phone, setPhone] = useState<string | null>(null);
  const [resendAfter, setResendAfter] = useState<string | null>(null);
  // A new key gives a blank form after "Register another account".
  const [round, setRound] = useState(0);

  const send = async (to: string) => {
    const sent = await api.sendOtp({ phone_number: to, purpose: "registration" });
    setResendAfter(sent.resend_after);
    return sent;
  };

  return (
    <section data-panel="register">
      <h2>Create an account</h2>
      <form
        key={round}
        id="register-form"
        noValidate
        hidden={step !== "form"}
        onSubmit={(event) => {
          const [get, form] = fields(event);
          shell.run(async () => {
            // The number goes with the registration, so a bad one is refused before the account exists.
            const created = await api.register({ username: get("username"), password: get("password"), phone_number: get("phone_number") });
            const to = created.user.phone_number ?? get("phone_number");
            setPhone(to);
            await shell.reloadUser();
            // The account exists now: its form gives way to the code step, which says where the code went.
            shell.say("Account created.");
            setStep("code");
            await send(to);
          }, form);
        }}
      >
        <Field form="register-form" label="Username" name="username" autoComplete="username" required minLength={3} maxLength={64} />
        <Field form="register-form" label="Password" name="password" type="password" autoComplete="new-password" required minLength={8} />
        <Field
          form="register-form"
          label="Phone number"
          name="phone_number"
          type="tel"
          autoComplete="tel"
          placeholder="+50688887777"
          required
        />
        <button type="submit" disabled={shell.busy}>
          Create account and send a code
        </button>
      </form>
      {step === "code" && phone !== null && (
        <CodeStep
          id="register-code"
          submitLabel="Verify phone"
          busy={shell.busy}
          resendAfter={resendAfter}
          onResend={(form) =>
            shell.run(async () => {
              const sent = await send(phone);
              shell.say(sent.message);
            }, form)
          }
          onSubmit={(code, _data, form) =>
            shell.run(async () => {
              await api.verifyOtp({ phone_number: phone, otp_code: code, purpose: "registration" });
              await shell.reloadUser();
              // One sentence: the service's "Code verified." would say the same thing again.
              shell.say("Your phone number is verified.");
              setStep("done");
            }, form)
          }
        >
          We sent a code to <strong data-field="phone">{phone}</strong>. Type it below.
        </CodeStep>
      )}
      {step === "done" && (
        <div className="done">
          <button
            type="button"
            className="secondary"
            data-action="again"
            onClick={() => {
              shell.quiet();
              setPhone(null);
              setRound((n) => n + 1);
              setStep("form");
            }}
          >
            Register another account
          </button>
        </div>
      )}
    </section>
  );
}

function SignInPanel({ shell, signedIn, onSignOut }: { shell: Shell; signedIn: boolean; onSignOut(): void }) {
  if (signedIn) {
    return (
      <section data-panel="signin">
        <h2>Your session</h2>
        <button
          type="button"
          className="secondary"
          id="signout"
          onClick={() => {
            api.logout();
            onSignOut();
            shell.say("Signed out.");
          }}
        >
          Sign out
        </button>
      </section>
    );
  }
  return (
    <section data-panel="signin">
      <h2>Sign in with a password</h2>
      <form
        id="signin-form"
        noValidate
        onSubmit={(event) => {
          const [get, form] = fields(event);
          shell.run(async () => {
            const login = get("login");
            const password = get("password");
            await api.login(login.includes("@") ? { email: login, password } : { username: login, password });
            const me = await shell.reloadUser();
            shell.say(`Signed in${me?.phone_verified === false ? ". Your phone number is not verified yet." : "."}`);
          }, form);
        }}
      >
        <Field form="signin-form" label="Username or email" name="login" autoComplete="username" required />
        <Field form="signin-form" label="Password" name="password" type="password" autoComplete="current-password" required />
        <button type="submit" disabled={shell.busy}>
          Sign in
        </button>
      </form>
      <p className="other-ways">
        <button type="button" className="link" data-open="passwordless" onClick={() => shell.openPanel("passwordless")}>
          Sign in with a code instead
        </button>
        <button type="button" className="link" data-open="reset" onClick={() => shell.openPanel("reset")}>
          Forgot your password?
        </button>
      </p>
    </section>
  );
}

/**
 * A flow that starts from a phone number alone (passwordless login, password reset): the number, the
 * same answer whether or not it has an account, then the code step in the form's place.
 */
function PhoneFlow(props: {
  shell: Shell;
  id: "passwordless" | "reset";
  title: string;
  startLabel: string;
  start(phone: string): Promise<{ message: string }>;
  submitLabel: string;
  extra?: ReactNode;
  finish(phone: string, code: string, form: FormData): Promise<void>;
  backLabel: string;
}) {
  const { shell } = props;
  const [phone, setPhone] = useState<string | null>(null);
  const [message, setMessage] = useState("");
  const formId = `${props.id}-form`;
  return (
    <section data-panel={props.id}>
      <h2>{props.title}</h2>
      <form
        id={formId}
        noValidate
        hidden={phone !== null}
        onSubmit={(event) => {
          const [get, form] = fields(event);
          shell.run(async () => {
            const started = await props.start(get("phone_number"));
            setPhone(get("phone_number"));
            // The code step says what happened; the notice would repeat it.
            setMessage(started.message);
            shell.quiet();
          }, form);
        }}
      >
        <Field form={formId} label="Phone number" name="phone_number" type="tel" autoComplete="tel" placeholder="+50688887777" required />
        <button type="submit" disabled={shell.busy}>
          {props.startLabel}
        </button>
      </form>
      {phone !== null && (
        <CodeStep
          id={`${props.id}-code`}
          submitLabel={props.submitLabel}
          busy={shell.busy}
          extra={props.extra}
          onBack={() => {
            shell.quiet();
            setPhone(null);
          }}
          onSubmit={(code, data, form) => shell.run(() => props.finish(phone, code, data), form)}
        >
          {message}
        </CodeStep>
      )}
      {phone === null && (
        <p className="other-ways">
          <button type="button" className="link" data-open="signin" onClick={() => shell.openPanel("signin")}>
            {props.backLabel}
          </button>
        </p>
      )}
    </section>
  );
}

function PasswordlessPanel({ shell }: { shell: Shell }) {
  return (
    <PhoneFlow
      shell={shell}
      id="passwordless"
      title="Sign in with a code"
      startLabel="Send me a login code"
      start={(phone) => api.startLogin(phone)}
      submitLabel="Sign in"
      backLabel="Sign in with a password instead"
      finish={async (phone, code) => {
        await api.finishLogin(phone, code);
        await shell.reloadUser();
        shell.say("Signed in with a code.");
        shell.openPanel("signin");
      }}
    />
  );
}

function ResetPanel({ shell }: { shell: Shell }) {
  return (
    <PhoneFlow
      shell={shell}
      id="reset"
      title="Reset your password"
      startLabel="Send me a reset code"
      start={(phone) => api.startPasswordReset(phone)}
      submitLabel="Set the new password"
      backLabel="Back to sign in"
      extra={
        <Field
          form="reset-code"
          label="New password"
          name="new_password"
          type="password"
          autoComplete="new-password"
          required
          minLength={8}
        />
      }
      finish={async (phone, code, data) => {
        const done = await api.confirmPasswordReset(phone, code, String(data.get("new_password") ?? ""));
        api.logout();
        await shell.reloadUser();
        shell.say(`${done.message} Sign in with the new password.`);
        shell.openPanel("signin");
      }}
    />
  );
}

interface Pending {
  phone_number: string;
  purpose: Purpose;
  channel: "sms" | "whatsapp" | "voice";
  id: string;
  resendAfter: string;
}

function CodesPanel({ shell }: { shell: Shell }) {
  const [pending, setPending] = useState<Pending | null>(null);
  const [done, setDone] = useState(false);
  const [delivery, setDelivery] = useState<Delivery>(deliveryOf(null));
  const [round, setRound] = useState(0);

  const send = async (request: Omit<Pending, "id" | "resendAfter">) => {
    const sent = await api.sendOtp(request);
    setPending({ ...request, id: sent.id, resendAfter: sent.resend_after });
    setDelivery(deliveryOf(null));
    // The code step says where it went and how its delivery goes.
    shell.quiet();
  };

  // Follows the delivery state a few times (Twilio's status callbacks update it).
  useEffect(() => {
    if (pending === null) return;
    let stop = false;
    (async () => {
      for (let i = 0; i < 5 && !stop; i++) {
        const record = await api.otpStatus(pending.id).catch(() => null);
        if (record === null || stop) return;
        setDelivery(deliveryOf(record));
        if (record.status !== "pending" && record.status !== "sent") return;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    })();
    return () => {
      stop = true;
    };
  }, [pending]);

  return (
    <section data-panel="codes">
      <h2>Send and verify a code</h2>
      <p className="hint">Signed in users only: the code is bound to your account, the number and the purpose.</p>
      <form
        key={round}
        id="codes-form"
        noValidate
        hidden={pending !== null || done}
        onSubmit={(event) => {
          const [get, form] = fields(event);
          shell.run(
            () =>
              send({
                phone_number: get("phone_number"),
                purpose: get("purpose") as Purpose,
                channel: get("channel") as Pending["channel"],
              }),
            form,
          );
        }}
      >
        <Field
          form="codes-form"
          label="Phone number"
          name="phone_number"
          type="tel"
          autoComplete="tel"
          placeholder="+50688887777"
          required
        />
        <Field form="codes-form" label="Purpose" name="purpose" as="select" defaultValue="login">
          <option value="login">login</option>
          <option value="registration">registration</option>
          <option value="password_reset">password_reset</option>
        </Field>
        <Field form="codes-form" label="Channel" name="channel" as="select" defaultValue="sms">
          <option value="sms">SMS</option>
          <option value="whatsapp">WhatsApp</option>
          <option value="voice">Voice call</option>
        </Field>
        <button type="submit" disabled={shell.busy}>
          Send code
        </button>
      </form>
      {pending !== null && (
        <CodeStep
          key={pending.id}
          id="codes-code"
          submitLabel="Verify"
          busy={shell.busy}
          resendAfter={pending.resendAfter}
          onResend={(form) =>
            shell.run(() => send({ phone_number: pending.phone_number, purpose: pending.purpose, channel: pending.channel }), form)
          }
          onBack={() => {
            shell.quiet();
            setPending(null);
          }}
          onSubmit={(code, _data, form) =>
            shell.run(async () => {
              const answer = await api.verifyOtp({ phone_number: pending.phone_number, otp_code: code, purpose: pending.purpose });
              setPending(null);
              setDone(true);
              setRound((n) => n + 1);
              shell.say(answer.message);
              await shell.reloadUser();
            }, form)
          }
          intro={
            <p className="delivery">
              Delivery:{" "}
              <span data-field="delivery" data-status={delivery.status}>
                {delivery.text}
              </span>
            </p>
          }
        >
          Code sent to <strong data-field="phone">{pending.phone_number}</strong>.
        </CodeStep>
      )}
      {done && (
        <div className="done">
          <button
            type="button"
            className="secondary"
            data-action="again"
            onClick={() => {
              shell.quiet();
              setDone(false);
            }}
          >
            Send another code
          </button>
        </div>
      )}
    </section>
  );
}
