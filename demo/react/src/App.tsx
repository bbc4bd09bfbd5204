import { type FormEvent, type ReactNode, useCallback, useEffect, useState } from "react";
import type { Purpose, User } from "vericode/client";
import { api, type Notice, noticeOf } from "./api.js";
import { CodeStep } from "./CodeStep.js";

type Tab = "register" | "signin" | "passwordless" | "reset" | "codes";

const TABS: [Tab, string][] = [
  ["register", "Register"],
  ["signin", "Sign in"],
  ["passwordless", "Code login"],
  ["reset", "Reset password"],
  ["codes", "Send a code"],
];

/** Shared by the panels: the notice line, the signed-in user, and a way to run an action with both. */
interface Shell {
  busy: boolean;
  run(action: () => Promise<void>): void;
  say(text: string): void;
  reloadUser(): Promise<User | null>;
  openTab(tab: Tab): void;
}

export function App() {
  const [tab, setTab] = useState<Tab>("register");
  const [user, setUser] = useState<User | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
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

  const shell: Shell = {
    busy,
    run: (action) => {
      setBusy(true);
      action()
        .catch((error: unknown) => setNotice(noticeOf(error)))
        .finally(() => setBusy(false));
    },
    say: (text) => setNotice({ kind: "ok", text }),
    reloadUser,
    openTab: setTab,
  };

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
          <button key={name} type="button" data-tab={name} aria-pressed={tab === name} onClick={() => setTab(name)}>
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

      <main>
        {tab === "register" && <RegisterPanel shell={shell} />}
        {tab === "signin" && <SignInPanel shell={shell} signedIn={user !== null} onSignOut={() => setUser(null)} />}
        {tab === "passwordless" && <PasswordlessPanel shell={shell} />}
        {tab === "reset" && <ResetPanel shell={shell} />}
        {tab === "codes" && <CodesPanel shell={shell} />}
      </main>

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

/** Reads a submitted form's fields as trimmed strings. */
function fields(event: FormEvent<HTMLFormElement>): (name: string) => string {
  event.preventDefault();
  const data = new FormData(event.currentTarget);
  return (name) => String(data.get(name) ?? "").trim();
}

function RegisterPanel({ shell }: { shell: Shell }) {
  const [phone, setPhone] = useState<string | null>(null);
  const [resendAfter, setResendAfter] = useState<string | null>(null);

  const send = async (to: string) => {
    const sent = await api.sendOtp({ phone_number: to, purpose: "registration" });
    setResendAfter(sent.resend_after);
    shell.say(`Account created. ${sent.message}`);
  };

  return (
    <section data-panel="register">
      <h2>Create an account</h2>
      <form
        id="register-form"
        noValidate
        onSubmit={(event) => {
          const get = fields(event);
          shell.run(async () => {
            // The number goes with the registration, so a bad one is refused before the account exists.
            const created = await api.register({ username: get("username"), password: get("password"), phone_number: get("phone_number") });
            const to = created.user.phone_number ?? get("phone_number");
            setPhone(to);
            await shell.reloadUser();
            await send(to);
          });
        }}
      >
        <label>
          Username <input name="username" autoComplete="username" required minLength={3} maxLength={64} />
        </label>
        <label>
          Password <input name="password" type="password" autoComplete="new-password" required minLength={8} />
        </label>
        <label>
          Phone number <input name="phone_number" type="tel" autoComplete="tel" placeholder="+50688887777" required />
        </label>
        <button type="submit" disabled={shell.busy}>
          Create account and send a code
        </button>
      </form>
      {phone !== null && (
        <CodeStep
          id="register-code"
          submitLabel="Verify phone"
          busy={shell.busy}
          resendAfter={resendAfter}
          onResend={() => shell.run(() => send(phone))}
          onSubmit={(code) =>
            shell.run(async () => {
              const answer = await api.verifyOtp({ phone_number: phone, otp_code: code, purpose: "registration" });
              setPhone(null);
              await shell.reloadUser();
              shell.say(`Phone verified. ${answer.message}`);
            })
          }
        >
          We sent a code to <strong data-field="phone">{phone}</strong>. Type it below.
        </CodeStep>
      )}
    </section>
  );
}

function SignInPanel({ shell, signedIn, onSignOut }: { shell: Shell; signedIn: boolean; onSignOut(): void }) {
  return (
    <section data-panel="signin">
      <h2>Sign in with a password</h2>
      <form
        id="signin-form"
        noValidate
        onSubmit={(event) => {
          const get = fields(event);
          shell.run(async () => {
            const login = get("login");
            const password = get("password");
            await api.login(login.includes("@") ? { email: login, password } : { username: login, password });
            const me = await shell.reloadUser();
            shell.say(`Signed in${me?.phone_verified === false ? ". Your phone number is not verified yet." : "."}`);
          });
        }}
      >
        <label>
          Username or email <input name="login" autoComplete="username" required />
        </label>
        <label>
          Password <input name="password" type="password" autoComplete="current-password" required />
        </label>
        <button type="submit" disabled={shell.busy}>
          Sign in
        </button>
      </form>
      {signedIn && (
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
      )}
    </section>
  );
}

/**
 * A flow that starts from a phone number alone (passwordless login, password reset): the number, the
 * same answer whether or not it has an account, then the code step.
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
}) {
  const { shell } = props;
  const [phone, setPhone] = useState<string | null>(null);
  const [message, setMessage] = useState("");
  return (
    <section data-panel={props.id}>
      <h2>{props.title}</h2>
      <form
        id={`${props.id}-form`}
        noValidate
        onSubmit={(event) => {
          const get = fields(event);
          shell.run(async () => {
            const started = await props.start(get("phone_number"));
            setPhone(get("phone_number"));
            setMessage(started.message);
            shell.say(started.message);
          });
        }}
      >
        <label>
          Phone number <input name="phone_number" type="tel" autoComplete="tel" placeholder="+50688887777" required />
        </label>
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
          onSubmit={(code, data) =>
            shell.run(async () => {
              await props.finish(phone, code, data);
              setPhone(null);
            })
          }
        >
          {message}
        </CodeStep>
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
      finish={async (phone, code) => {
        await api.finishLogin(phone, code);
        await shell.reloadUser();
        shell.say("Signed in with a code.");
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
      extra={
        <label>
          New password <input name="new_password" type="password" autoComplete="new-password" required minLength={8} />
        </label>
      }
      finish={async (phone, code, data) => {
        const done = await api.confirmPasswordReset(phone, code, String(data.get("new_password") ?? ""));
        api.logout();
        await shell.reloadUser();
        shell.say(`${done.message} Sign in with the new password.`);
        shell.openTab("signin");
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
  const [delivery, setDelivery] = useState("sent");

  const send = async (request: Omit<Pending, "id" | "resendAfter">) => {
    const sent = await api.sendOtp(request);
    setPending({ ...request, id: sent.id, resendAfter: sent.resend_after });
    setDelivery("sent");
    shell.say(sent.message);
  };

  // Follows the delivery state a few times (Twilio's status callbacks update it).
  useEffect(() => {
    if (pending === null) return;
    let stop = false;
    (async () => {
      for (let i = 0; i < 5 && !stop; i++) {
        const record = await api.otpStatus(pending.id).catch(() => null);
        if (record === null || stop) return;
        setDelivery(record.delivery_status ?? record.status);
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
        id="codes-form"
        noValidate
        onSubmit={(event) => {
          const get = fields(event);
          shell.run(() =>
            send({ phone_number: get("phone_number"), purpose: get("purpose") as Purpose, channel: get("channel") as Pending["channel"] }),
          );
        }}
      >
        <label>
          Phone number <input name="phone_number" type="tel" autoComplete="tel" placeholder="+50688887777" required />
        </label>
        <label>
          Purpose
          <select name="purpose" defaultValue="login">
            <option value="login">login</option>
            <option value="registration">registration</option>
            <option value="password_reset">password_reset</option>
          </select>
        </label>
        <label>
          Channel
          <select name="channel" defaultValue="sms">
            <option value="sms">SMS</option>
            <option value="whatsapp">WhatsApp</option>
            <option value="voice">Voice call</option>
          </select>
        </label>
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
          onResend={() => shell.run(() => send({ phone_number: pending.phone_number, purpose: pending.purpose, channel: pending.channel }))}
          onSubmit={(code) =>
            shell.run(async () => {
              const answer = await api.verifyOtp({ phone_number: pending.phone_number, otp_code: code, purpose: pending.purpose });
              setPending(null);
              shell.say(answer.message);
              await shell.reloadUser();
            })
          }
        >
          Code sent to <strong data-field="phone">{pending.phone_number}</strong>. Status: <span data-field="delivery">{delivery}</span>
        </CodeStep>
      )}
    </section>
  );
}
