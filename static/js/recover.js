// /recover: create a new passkey on this device for the username's account and start a
// recovery; /recover/<id>: the code to read out (kept in this tab only), the state and the
// countdown, polled from the API. With a recovery code, this browser derives its key and signs
// the start of the recovery (the portal's relayer sends it): no guardian needs to approve.
import { describe, postJSON, requestJSON, say, setBusy } from "./ceremony.js";
import { CodeError, keyFromCode, signTypedData } from "./recovery-code.js";

const explain = (error) => (error instanceof CodeError ? error.message : describe(error));

const form = document.getElementById("recover-form");
const statusSection = document.getElementById("recovery-status");
const STATES = {
  pending_approval: "Waiting for a guardian to approve",
  initiated: "Approved: waiting out the 24-hour delay",
  finalized: "Finished: your new passkey was added",
  discarded: "Cancelled",
  expired: "Expired",
};
const REASONS = {
  discarded_by_owner: "A device that still holds one of the account's passkeys cancelled it.",
  refused_by_guardian: "A guardian refused it.",
  guardian_removed: "The approving guardian was removed.",
  too_many_codes: "A wrong code was typed too many times.",
  not_approved_in_time: "No guardian approved it in time.",
  not_finalized_in_time: "It was not completed within its 72-hour window.",
  superseded_on_chain: "An earlier recovery of the account was started on chain, which holds one at a time.",
};

const CODE_ERROR_KEY = "recovery-code-error";

async function startWithCode(url, wallet) {
  const options = await requestJSON("GET", url);
  const signature = await signTypedData(wallet, options.typed_data);
  return postJSON(url, { deadline: options.typed_data.message.deadline, signature });
}

if (form) {
  const button = document.getElementById("recover-button");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setBusy(button, true);
    try {
      const typedCode = form.elements.recovery_code.value.trim();
      const wallet = typedCode ? keyFromCode(typedCode) : null;
      say("Follow your browser’s prompt to create a new passkey…");
      const username = form.elements.username.value.trim();
      const options = await postJSON(form.dataset.optionsUrl, { username });
      const credential = await window.SimpleWebAuthnBrowser.startRegistration({
        optionsJSON: options.publicKey,
      });
      const started = await postJSON(form.dataset.startUrl, {
        username,
        ceremony_id: options.ceremony_id,
        credential,
        passkey_name: form.elements.passkey_name.value.trim(),
      });
      sessionStorage.setItem(`recovery-code-${started.id}`, started.code);
      if (wallet) {
        try {
          await startWithCode(`${form.dataset.startUrl}/${started.id}/recovery-code`, wallet);
        } catch (error) {
          sessionStorage.setItem(CODE_ERROR_KEY, explain(error));
        }
      }
      window.location.assign(`${form.dataset.statusUrl}/${started.id}`);
    } catch (error) {
      say(explain(error), "error");
      setBusy(button, false);
    }
  });
}

function countdown(target) {
  const left = Date.parse(target) - Date.now();
  if (left <= 0) return "any moment now";
  const hours = Math.floor(left / 3600000);
  const minutes = Math.floor((left % 3600000) / 60000);
  return `in ${hours} h ${minutes} min`;
}

function show(recovery) {
  statusSection.dataset.status = recovery.status;
  document.getElementById("recovery-state").textContent = STATES[recovery.status] || recovery.status;
  const line = document.getElementById("recovery-countdown");
  if (recovery.status === "initiated" && recovery.completes_at) {
    line.textContent = `Your new passkey is added ${countdown(recovery.completes_at)} (after ${new Date(recovery.completes_at).toUTCString()}).`;
  } else if (recovery.status === "pending_approval") {
    line.textContent = `A guardian must approve it ${countdown(recovery.expires_at)}.`;
  } else if (recovery.status === "discarded" || recovery.status === "expired") {
    line.textContent = REASONS[recovery.end_reason] || "";
  } else {
    line.textContent = "";
  }
  document.getElementById("recovery-done").hidden = recovery.status !== "finalized";
  const card = document.getElementById("recovery-code-card");
  if (recovery.status !== "pending_approval") card.hidden = true;
  if (codeForm && (recovery.status !== "pending_approval" || recovery.approved)) codeForm.hidden = true;
}

async function poll() {
  try {
    const response = await fetch(statusSection.dataset.url, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const recovery = await response.json();
      show(recovery);
      if (["finalized", "discarded", "expired"].includes(recovery.status)) return;
    }
  } catch {
    // try again at the next tick
  }
  setTimeout(poll, 3000);
}

const codeForm = document.getElementById("recovery-code-form");
if (codeForm) {
  const button = document.getElementById("recovery-code-button");
  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    setBusy(button, true);
    try {
      await startWithCode(codeForm.dataset.url, keyFromCode(codeForm.elements.recovery_code.value));
      codeForm.hidden = true;
      say("Your code started the recovery: the chain now counts 24 hours.", "success");
    } catch (error) {
      say(explain(error), "error");
    } finally {
      setBusy(button, false);
    }
  });
}

if (statusSection) {
  const codeError = sessionStorage.getItem(CODE_ERROR_KEY);
  if (codeError) {
    sessionStorage.removeItem(CODE_ERROR_KEY);
    say(`Your recovery code did not start it: ${codeError}`, "error");
  }
  const code = sessionStorage.getItem(`recovery-code-${statusSection.dataset.id}`);
  if (code && statusSection.dataset.status === "pending_approval") {
    document.getElementById("recovery-code").textContent = code;
    document.getElementById("recovery-code-card").hidden = false;
  }
  poll();
}
