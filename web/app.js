// vericode's plain HTML/JS demo: no build step. It uses the same typed client the package exports as
// `vericode/client`, which the service serves at /client.js.
import { createClient, describeError, VericodeApiError, webStorageTokenStore } from "/client.js";

const api = createClient({ tokens: webStorageTokenStore(sessionStorage) });
const $ = (selector, root = document) => root.querySelector(selector);

// ---- notices: one line for what happened, with the stable code for errors ------------------------------

function notify(kind, text, code) {
  const box = $("#notice");
  box.hidden = false;
  box.className = `notice ${kind}`;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.replaceChildren(document.createTextNode(text));
  if (code !== undefined) {
    const tag = document.createElement("code");
    tag.textContent = code;
    box.append(" ", tag);
  }
  box.dataset.code = code ?? "";
}

function fail(error) {
  if (error instanceof VericodeApiError) {
    // The plain headline, then the service's own words when they add something (which field, how long).
    const repeats = error.code === "otp_invalid" || describeError(error).includes(error.message);
    const detail = error.message && !repeats ? ` ${error.message}` : "";
    notify("error", describeError(error) + detail, error.code);
  } else notify("error", String(error?.message ?? error));
}

/** Runs a form's action with its buttons disabled, and reports any failure. */
function handle(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    try {
      await action(new FormData(form));
    } catch (error) {
      fail(error);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  });
}

// ---- session -------------------------------------------------------------------------------------------

async function showSession() {
  const box = $("#session");
  if (api.tokens === null) {
    box.textContent = "Not signed in.";
    box.dataset.state = "signed-out";
    $("#signout").hidden = true;
    return null;
  }
  try {
    const me = await api.me();
    const name = me.username ?? me.email;
    const phone = me.phone_number === null ? "no phone number" : `${me.phone_number} (${me.phone_verified ? "verified" : "not verified"})`;
    box.textContent = `Signed in as ${name} · ${phone}`;
    box.dataset.state = me.phone_verified ? "verified" : "unverified";
    $("#signout").hidden = false;
    return me;
  } catch (error) {
    if (error instanceof VericodeApiError && error.code === "unauthorized") api.logout();
    box.textContent = "Not signed in.";
    box.dataset.state = "signed-out";
    return null;
  }
}

// ---- tabs ----------------------------------------------------------------------------------------------

function openTab(name) {
  for (const button of document.querySelectorAll("[data-tab]")) button.setAttribute("aria-pressed", String(button.dataset.tab === name));
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
}
for (const button of document.querySelectorAll("[data-tab]")) button.addEventListener("click", () => openTab(button.dataset.tab));

// ---- the code step: WebOTP where the browser has it, and a resend button that honours resend_after -------

let webOtp = null;

function showCodeStep(form, { phone, resendAfter } = {}) {
  form.hidden = false;
  for (const field of form.querySelectorAll('[data-field="phone"]')) field.textContent = phone ?? "";
  const input = form.elements.code;
  input.value = "";
  input.focus();
  if (resendAfter !== undefined) holdResend(form, resendAfter);
  // WebOTP: Chrome on Android reads an SMS that ends in "@host #code" and fills the field.
  webOtp?.abort();
  if ("OTPCredential" in window) {
    webOtp = new AbortController();
    navigator.credentials
      .get({ otp: { transport: ["sms"] }, signal: webOtp.signal })
      .then((otp) => {
        if (otp?.code) {
          input.value = otp.code;
          form.requestSubmit();
        }
      })
      .catch(() => {});
  }
}

function holdResend(form, resendAfter) {
  const button = form.querySelector('[data-action="resend"]');
  if (button === null) return;
  const until = new Date(resendAfter).getTime();
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    button.disabled = left > 0;
    button.textContent = left > 0 ? `Send a new code (${left} s)` : "Send a new code";
    if (left > 0) setTimeout(tick, 1000);
  };
  tick();
}

function codeOf(data) {
  webOtp?.abort();
  return String(data.get("code") ?? "").trim();
}

// ---- registration, then the phone's verification --------------------------------------------------------

let registeringPhone = null;

handle($("#register-form"), async (data) => {
  // The number goes with the registration, so a bad one is refused before the account exists.
  const created = await api.register({
    username: String(data.get("username")).trim(),
    password: String(data.get("password")),
    phone_number: String(data.get("phone_number")).trim(),
  });
  registeringPhone = created.user.phone_number;
  await showSession();
  showCodeStep($("#register-code"), { phone: registeringPhone });
  const sent = await api.sendOtp({ phone_number: registeringPhone, purpose: "registration" });
  notify("ok", `Account created. ${sent.message}`);
  holdResend($("#register-code"), sent.resend_after);
});

handle($("#register-code"), async (data) => {
  const answer = await api.verifyOtp({ phone_number: registeringPhone, otp_code: codeOf(data), purpose: "registration" });
  $("#register-code").hidden = true;
  await showSession();
  notify("ok", `Phone verified. ${answer.message}`);
});

$('#register-code [data-action="resend"]').addEventListener("click", async () => {
  try {
    const sent = await api.sendOtp({ phone_number: registeringPhone, purpose: "registration" });
    notify("ok", sent.message);
    showCodeStep($("#register-code"), { phone: registeringPhone, resendAfter: sent.resend_after });
  } catch (error) {
    fail(error);
  }
});

// ---- password sign-in ----------------------------------------------------------------------------------

handle($("#signin-form"), async (data) => {
  const login = String(data.get("login")).trim();
  const password = String(data.get("password"));
  await api.login(login.includes("@") ? { email: login, password } : { username: login, password });
  const me = await showSession();
  notify("ok", `Signed in${me?.phone_verified === false ? ". Your phone number is not verified yet." : "."}`);
});

$("#signout").addEventListener("click", async () => {
  api.logout();
  await showSession();
  notify("ok", "Signed out.");
});

// ---- passwordless login ----------------------------------------------------------------------------------

let loginPhone = null;

handle($("#passwordless-form"), async (data) => {
  loginPhone = String(data.get("phone_number")).trim();
  const started = await api.startLogin(loginPhone);
  $('#passwordless-code [data-field="flow-message"]').textContent = started.message;
  notify("ok", started.message);
  showCodeStep($("#passwordless-code"), { phone: loginPhone });
});

handle($("#passwordless-code"), async (data) => {
  await api.finishLogin(loginPhone, codeOf(data));
  $("#passwordless-code").hidden = true;
  await showSession();
  notify("ok", "Signed in with a code.");
});

// ---- password reset --------------------------------------------------------------------------------------

let resetPhone = null;

handle($("#reset-form"), async (data) => {
  resetPhone = String(data.get("phone_number")).trim();
  const started = await api.startPasswordReset(resetPhone);
  $('#reset-code [data-field="flow-message"]').textContent = started.message;
  notify("ok", started.message);
  showCodeStep($("#reset-code"), { phone: resetPhone });
});

handle($("#reset-code"), async (data) => {
  const done = await api.confirmPasswordReset(resetPhone, codeOf(data), String(data.get("new_password")));
  $("#reset-code").hidden = true;
  api.logout();
  await showSession();
  notify("ok", `${done.message} Sign in with the new password.`);
  openTab("signin");
});

// ---- any code, for a signed-in user -------------------------------------------------------------------

let pending = null;

async function sendCode(request) {
  const sent = await api.sendOtp(request);
  pending = { ...request, id: sent.id };
  notify("ok", sent.message);
  showCodeStep($("#codes-code"), { phone: request.phone_number, resendAfter: sent.resend_after });
  watchDelivery(sent.id);
}

/** Follows the delivery state a few times (Twilio's status callbacks update it). */
async function watchDelivery(id) {
  const field = $('#codes-code [data-field="delivery"]');
  for (let i = 0; i < 5 && pending?.id === id; i++) {
    try {
      const record = await api.otpStatus(id);
      field.textContent = record.delivery_status ?? record.status;
      if (record.status !== "pending" && record.status !== "sent") return;
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

handle($("#codes-form"), async (data) => {
  await sendCode({
    phone_number: String(data.get("phone_number")).trim(),
    purpose: String(data.get("purpose")),
    channel: String(data.get("channel")),
  });
});

handle($("#codes-code"), async (data) => {
  const answer = await api.verifyOtp({ phone_number: pending.phone_number, otp_code: codeOf(data), purpose: pending.purpose });
  $("#codes-code").hidden = true;
  pending = null;
  notify("ok", answer.message);
  await showSession();
});

$('#codes-code [data-action="resend"]').addEventListener("click", async () => {
  try {
    await sendCode({ phone_number: pending.phone_number, purpose: pending.purpose, channel: pending.channel });
  } catch (error) {
    fail(error);
  }
});

await showSession();
document.body.dataset.ready = "true";
