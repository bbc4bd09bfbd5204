// vericode's plain HTML/JS demo: no build step. It uses the same typed client the package exports as
// `vericode/client`, which the service serves at /client.js.
import { createClient, describeError, VericodeApiError, webStorageTokenStore } from "/client.js";

const api = createClient({ tokens: webStorageTokenStore(sessionStorage) });
const $ = (selector, root = document) => root.querySelector(selector);

// ---- notices: one line for what happened, with the stable code for errors ------------------------------

/** Shows one notice, or hides it with `null`: each event says what happened once, in one place. */
function notify(kind, text, code) {
  const box = $("#notice");
  box.hidden = kind === null;
  if (kind === null) {
    box.replaceChildren();
    box.dataset.code = "";
    return;
  }
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

// ---- field errors: each of a problem's `errors[]` beside its input, the rest in the notice ---------------

/** API fields whose input has another name: the code step's `code`, the sign-in form's `login`. */
const INPUT_FOR = { otp_code: "code", username: "login", email: "login" };

function inputFor(form, field) {
  for (const name of [field, INPUT_FOR[field]]) {
    const input = name === undefined ? null : form.elements.namedItem(name);
    if (input instanceof HTMLInputElement || input instanceof HTMLSelectElement) return input;
  }
  return null;
}

function clearFieldError(input) {
  document.getElementById(input.getAttribute("aria-describedby") ?? "")?.remove();
  input.removeAttribute("aria-invalid");
  input.removeAttribute("aria-describedby");
}

function clearFieldErrors(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) clearFieldError(input);
}

/** Writes `message` under `input` (several messages for one input are joined). */
function markField(form, input, message) {
  const id = `${form.id}-${input.name}-error`;
  let note = document.getElementById(id);
  if (note === null) {
    note = document.createElement("span");
    note.id = id;
    note.className = "field-error";
    note.dataset.errorFor = input.name;
    input.after(note);
  }
  note.textContent = note.textContent === "" ? message : `${note.textContent} ${message}`;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", id);
}

/**
 * Puts each `{field, message}` of the problem beside its input in `form` and returns the ones that have
 * no input there. Only the shape of `errors[]` is relied on, never the wording of the messages.
 */
function placeFieldErrors(form, error) {
  clearFieldErrors(form);
  let errors = error.fieldErrors;
  // A number the service could not read is about the number's field even when it names none.
  if (errors.length === 0 && error.code === "invalid_phone_number" && error.message !== "") {
    errors = [{ field: "phone_number", message: error.message }];
  }
  const rest = [];
  for (const { field, message } of errors) {
    const input = inputFor(form, field);
    if (input === null || input.closest("[hidden]") !== null) rest.push({ field, message });
    else markField(form, input, message);
  }
  return { placed: errors.length - rest.length, rest };
}

/** The notice for a failure; field errors go beside their inputs in `form` when one is given. */
function fail(error, form) {
  if (!(error instanceof VericodeApiError)) {
    notify("error", String(error?.message ?? error));
    return;
  }
  const { placed, rest } = form === undefined ? { placed: 0, rest: error.fieldErrors } : placeFieldErrors(form, error);
  const headline = describeError(error);
  let text;
  if (placed > 0 || rest.length > 0) {
    // The headline says to check the form; what no field shows is listed after it.
    text = [headline, ...rest.map((e) => `${e.field}: ${e.message}`)].join(" ");
  } else if (error.retryAfter !== null && error.message !== "") {
    // The service's words already give the wait: the headline would say it a second time.
    text = error.message;
  } else {
    // The plain headline, then the service's own words when they add something (how many tries are left is in both).
    const repeats = error.code === "otp_invalid" || headline.includes(error.message);
    text = error.message && !repeats ? `${headline} ${error.message}` : headline;
  }
  notify("error", text, error.code);
  if (form !== undefined) form.querySelector("[aria-invalid]")?.focus();
}

/** Runs a form's action with its buttons disabled, and reports any failure beside the form's fields. */
function handle(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    clearFieldErrors(form);
    try {
      await action(new FormData(form));
    } catch (error) {
      fail(error, form);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  });
  // Typing in a field takes its error away.
  form.addEventListener("input", (event) => {
    if (event.target.hasAttribute?.("aria-invalid")) clearFieldError(event.target);
  });
}

// ---- the steps of a panel: its form, then the code, then done (the filled form does not stay) -----------

function setStep(panel, step) {
  for (const part of $(`[data-panel="${panel}"]`).querySelectorAll("[data-step]")) part.hidden = part.dataset.step !== step;
}

/** Back to an empty first step: the forms cleared, their errors gone. */
function restart(panel) {
  for (const form of $(`[data-panel="${panel}"]`).querySelectorAll("form")) {
    form.reset();
    clearFieldErrors(form);
  }
  setStep(panel, "form");
}

// ---- session -------------------------------------------------------------------------------------------

async function showSession() {
  const box = $("#session");
  if (api.tokens === null) {
    box.textContent = "Not signed in.";
    box.dataset.state = "signed-out";
    setStep("signin", "form");
    return null;
  }
  try {
    const me = await api.me();
    const name = me.username ?? me.email;
    const phone = me.phone_number === null ? "no phone number" : `${me.phone_number} (${me.phone_verified ? "verified" : "not verified"})`;
    box.textContent = `Signed in as ${name} · ${phone}`;
    box.dataset.state = me.phone_verified ? "verified" : "unverified";
    setStep("signin", "done");
    return me;
  } catch (error) {
    if (error instanceof VericodeApiError && error.code === "unauthorized") api.logout();
    box.textContent = "Not signed in.";
    box.dataset.state = "signed-out";
    setStep("signin", "form");
    return null;
  }
}

// ---- tabs: three in the bar; the code login and the reset are ways of signing in -------------------------

const TAB_OF = { passwordless: "signin", reset: "signin" };

function openTab(name) {
  const tab = TAB_OF[name] ?? name;
  for (const button of document.querySelectorAll("[data-tab]")) button.setAttribute("aria-pressed", String(button.dataset.tab === tab));
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
}
for (const button of document.querySelectorAll("[data-tab]")) button.addEventListener("click", () => openTab(button.dataset.tab));
for (const button of document.querySelectorAll("[data-open]")) button.addEventListener("click", () => openTab(button.dataset.open));

// ---- the code step: WebOTP where the browser has it, and a resend button that honours resend_after -------

let webOtp = null;

/** Replaces the panel's form by its code step (`form` is the step's own form). */
function showCodeStep(form, { phone, resendAfter } = {}) {
  setStep(form.closest("[data-panel]").dataset.panel, "code");
  clearFieldErrors(form);
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
  // The account exists now: its form gives way to the code step, which says where the code went.
  notify("ok", "Account created.");
  showCodeStep($("#register-code"), { phone: registeringPhone });
  const sent = await api.sendOtp({ phone_number: registeringPhone, purpose: "registration" });
  holdResend($("#register-code"), sent.resend_after);
});

handle($("#register-code"), async (data) => {
  await api.verifyOtp({ phone_number: registeringPhone, otp_code: codeOf(data), purpose: "registration" });
  await showSession();
  // One sentence: the service's "Code verified." would say the same thing again.
  notify("ok", "Your phone number is verified.");
  $("#register-form").reset();
  setStep("register", "done");
});

$('#register-code [data-action="resend"]').addEventListener("click", async () => {
  try {
    const sent = await api.sendOtp({ phone_number: registeringPhone, purpose: "registration" });
    notify("ok", sent.message);
    showCodeStep($("#register-code"), { phone: registeringPhone, resendAfter: sent.resend_after });
  } catch (error) {
    fail(error, $("#register-code"));
  }
});

$('[data-panel="register"] [data-action="again"]').addEventListener("click", () => {
  notify(null);
  restart("register");
});

// ---- password sign-in ----------------------------------------------------------------------------------

handle($("#signin-form"), async (data) => {
  const login = String(data.get("login")).trim();
  const password = String(data.get("password"));
  await api.login(login.includes("@") ? { email: login, password } : { username: login, password });
  $("#signin-form").reset();
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
  // The code step says what happened; the notice would repeat it.
  $('#passwordless-code [data-field="flow-message"]').textContent = started.message;
  notify(null);
  showCodeStep($("#passwordless-code"), { phone: loginPhone });
});

handle($("#passwordless-code"), async (data) => {
  await api.finishLogin(loginPhone, codeOf(data));
  restart("passwordless");
  await showSession();
  notify("ok", "Signed in with a code.");
  openTab("signin");
});

// ---- password reset --------------------------------------------------------------------------------------

let resetPhone = null;

handle($("#reset-form"), async (data) => {
  resetPhone = String(data.get("phone_number")).trim();
  const started = await api.startPasswordReset(resetPhone);
  $('#reset-code [data-field="flow-message"]').textContent = started.message;
  notify(null);
  showCodeStep($("#reset-code"), { phone: resetPhone });
});

handle($("#reset-code"), async (data) => {
  const done = await api.confirmPasswordReset(resetPhone, codeOf(data), String(data.get("new_password")));
  restart("reset");
  api.logout();
  await showSession();
  notify("ok", `${done.message} Sign in with the new password.`);
  openTab("signin");
});

// ---- any code, for a signed-in user -------------------------------------------------------------------

let pending = null;

/** What a delivery state means to the person waiting for the code (Twilio's words, and vericode's two). */
const DELIVERY = {
  logged: "in the service's log: the console provider writes messages there instead of sending them (development only)",
  not_sent: "no message: this test number (OTP_TEST_NUMBERS) has a fixed code",
  queued: "queued at the provider",
  accepted: "accepted by the provider",
  scheduled: "scheduled by the provider",
  sending: "being sent",
  sent: "sent to the carrier, not yet confirmed",
  delivered: "delivered to the phone",
  read: "delivered and read",
  undelivered: "not delivered: the carrier could not reach the phone",
  failed: "failed: the provider could not send it",
  canceled: "canceled",
};

/** A code's delivery in words, with the raw state kept in data-status for programs (and tests). */
function showDelivery(record) {
  const field = $('#codes-code [data-field="delivery"]');
  if (record === null) {
    field.dataset.status = "";
    field.textContent = "waiting for the provider";
    return;
  }
  const status = record.delivery_status ?? record.status;
  field.dataset.status = status;
  const words = DELIVERY[status] ?? status;
  field.textContent = record.fallback_from ? `${words} (by ${record.channel}: ${record.fallback_from} failed)` : words;
}

async function sendCode(request) {
  const sent = await api.sendOtp(request);
  pending = { ...request, id: sent.id };
  // The code step says where it went and how its delivery goes.
  notify(null);
  showDelivery(null);
  showCodeStep($("#codes-code"), { phone: request.phone_number, resendAfter: sent.resend_after });
  watchDelivery(sent.id);
}

/** Follows the delivery state a few times (Twilio's status callbacks update it). */
async function watchDelivery(id) {
  for (let i = 0; i < 5 && pending?.id === id; i++) {
    try {
      const record = await api.otpStatus(id);
      if (pending?.id !== id) return;
      showDelivery(record);
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
  pending = null;
  $("#codes-form").reset();
  setStep("codes", "done");
  notify("ok", answer.message);
  await showSession();
});

$('#codes-code [data-action="resend"]').addEventListener("click", async () => {
  try {
    await sendCode({ phone_number: pending.phone_number, purpose: pending.purpose, channel: pending.channel });
  } catch (error) {
    fail(error, $("#codes-code"));
  }
});

$('[data-panel="codes"] [data-action="again"]').addEventListener("click", () => {
  notify(null);
  restart("codes");
});

// "Use another number": back to the flow's form, as it was filled.
for (const panel of ["passwordless", "reset", "codes"]) {
  $(`[data-panel="${panel}"] [data-action="back"]`).addEventListener("click", () => {
    webOtp?.abort();
    if (panel === "codes") pending = null;
    notify(null);
    setStep(panel, "form");
    $(`#${panel}-form [name=phone_number]`).focus();
  });
}

await showSession();
document.body.dataset.ready = "true";
