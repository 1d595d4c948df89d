// Recovery actions on any page of a signed-in person (the banners) and on /account/recovery:
// propose / remove / accept a guardian, approve or refuse a recovery, cancel one of one's own
// account. Each chain step comes back as an operation that is approved here with a passkey
// (the generic /api/v1/operations/{id}/options|sign flow), then the page reloads.
import { describe, requestJSON } from "./ceremony.js";

const OPERATIONS_URL = "/api/v1/operations";

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value;
}

function tell(text, kind = "info") {
  const region = document.getElementById("recovery-message") || document.getElementById("message");
  if (!region) return;
  region.dataset.kind = kind;
  region.textContent = text;
}

async function approveWithPasskey(operation) {
  if (!operation || operation.status !== "awaiting_signature") return;
  tell("Follow your browser’s prompt to approve with one of your passkeys…");
  const base = `${OPERATIONS_URL}/${operation.id}`;
  const options = await requestJSON("POST", `${base}/options`, {}, csrfToken());
  const credential = await window.SimpleWebAuthnBrowser.startAuthentication({
    optionsJSON: options.publicKey,
  });
  await requestJSON("POST", `${base}/sign`, { credential }, csrfToken());
}

async function run(element, action) {
  const button = element.tagName === "FORM" ? element.querySelector("button[type=submit]") : element;
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    const answer = await action();
    await approveWithPasskey(answer?.operation ?? (answer?.kind ? answer : null));
    tell("Done. The portal is sending it to the chain.", "success");
    document.body.dataset.recoveryDone = "true";
    setTimeout(() => window.location.reload(), 800);
  } catch (error) {
    tell(describe(error), "error");
    if (button) {
      button.disabled = false;
      button.setAttribute("aria-busy", "false");
    }
  }
}

const ACTIONS = {
  discard: (el) => requestJSON("POST", el.dataset.url, {}, csrfToken()),
  refuse: (el) => requestJSON("POST", el.dataset.url, {}, csrfToken()),
  accept: (el) => requestJSON("POST", el.dataset.url, {}, csrfToken()),
  remove: (el) => requestJSON("DELETE", el.dataset.url, undefined, csrfToken()),
  enable: (el) => requestJSON("POST", el.dataset.url, {}, csrfToken()),
  approve: (form) =>
    requestJSON("POST", form.dataset.url, { code: form.elements.code.value.trim() }, csrfToken()),
  propose: (form) => {
    const username = form.elements.username.value.trim();
    const address = form.elements.address.value.trim();
    return requestJSON("POST", form.dataset.url, username ? { username } : { address }, csrfToken());
  },
};

if (!window.recoveryActionsWired) {
  window.recoveryActionsWired = true;
  document.addEventListener("click", (event) => {
    const element = event.target.closest("button[data-recovery-action]");
    if (!element) return;
    event.preventDefault();
    run(element, () => ACTIONS[element.dataset.recoveryAction](element));
  });
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-recovery-action]");
    if (!form) return;
    event.preventDefault();
    run(form, () => ACTIONS[form.dataset.recoveryAction](form));
  });
}
