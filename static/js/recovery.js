// Recovery actions on any page of a signed-in person (the banners) and on /account/recovery:
// propose / remove / accept a guardian, approve or refuse a recovery, cancel one of one's own
// account. Each chain step comes back as an operation that is approved here with a passkey
// (the generic /api/v1/operations/{id}/options|sign flow), then the page reloads.
// The recovery code is made here (static/js/recovery-code.js), shown once, then installed.
import { describe, requestJSON } from "./ceremony.js";
import { keyFromCode, newCode, signTypedData } from "./recovery-code.js";

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

// A new recovery code: its key signs AcceptGuardian, the portal prepares the operation that
// installs its address, the code is shown (and printable); the passkey approval comes after.
const createCode = document.getElementById("recovery-code-create");
if (createCode) {
  let pending = null;
  createCode.addEventListener("click", async () => {
    createCode.disabled = true;
    createCode.setAttribute("aria-busy", "true");
    try {
      const code = newCode();
      const wallet = keyFromCode(code);
      const options = await requestJSON(
        "POST",
        createCode.dataset.optionsUrl,
        { address: wallet.address },
        csrfToken(),
      );
      const signature = await signTypedData(wallet, options.typed_data);
      pending = await requestJSON(
        "POST",
        createCode.dataset.url,
        { address: wallet.address, deadline: options.typed_data.message.deadline, signature },
        csrfToken(),
      );
      document.getElementById("recovery-code-value").textContent = code.replaceAll("-", " ");
      const sheet = document.getElementById("recovery-code-sheet");
      sheet.hidden = false;
      sheet.scrollIntoView({ block: "start" });
      createCode.hidden = true;
      tell("Your code is below. It works once it is installed with your passkey.");
    } catch (error) {
      tell(describe(error), "error");
      createCode.disabled = false;
    } finally {
      createCode.setAttribute("aria-busy", "false");
    }
  });
  document.getElementById("recovery-code-print")?.addEventListener("click", () => window.print());
  const install = document.getElementById("recovery-code-install");
  install?.addEventListener("click", () => run(install, async () => pending));
}
