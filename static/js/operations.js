// The smart-account card: lists the person's chain operations with live progress (polling), and
// lets them approve one that waits for a passkey ("Approve with a passkey you already have").
import { describe, postJSON } from "./ceremony.js";

const { startAuthentication } = window.SimpleWebAuthnBrowser;
const section = document.getElementById("smart-account");
const FINAL = new Set(["confirmed", "failed", "expired"]);
const LABELS = {
  deploy_account: "Deploy your smart account",
  add_passkey: "Add a passkey on chain",
  remove_passkey: "Remove a passkey on chain",
};
const STATUS = {
  awaiting_signature: "Waiting for your approval",
  signed: "Approved, about to be sent",
  submitted: "Sent to the chain",
  included: "In a block, waiting for confirmations",
  confirmed: "Confirmed",
  failed: "Failed",
  expired: "Expired before it was approved",
};

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value;
}

function tell(text, kind = "info") {
  const region = document.getElementById("operations-message");
  region.dataset.kind = kind;
  region.textContent = text;
}

async function fetchOperations() {
  const response = await fetch(section.dataset.operationsUrl, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const page = await response.json();
  return page.results;
}

async function approve(operation, button) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  tell("Follow your browser’s prompt to approve with one of your passkeys…");
  try {
    const base = `${section.dataset.operationsUrl}/${operation.id}`;
    const options = await postJSON(`${base}/options`, {}, csrfToken());
    const credential = await startAuthentication({ optionsJSON: options.publicKey });
    await postJSON(`${base}/sign`, { credential }, csrfToken());
    tell("Approved. The portal is sending it to the chain.", "success");
  } catch (error) {
    tell(describe(error), "error");
  }
  await refresh();
}

// An expired or failed passkey change with no newer attempt: the person can ask for it again.
function retryable(operation, operations) {
  if (!["expired", "failed"].includes(operation.status)) return false;
  if (!["add_passkey", "remove_passkey"].includes(operation.kind)) return false;
  return !operations.some(
    (other) =>
      other.id > operation.id &&
      other.kind === operation.kind &&
      other.passkey_id === operation.passkey_id,
  );
}

async function retry(operation, button) {
  button.disabled = true;
  try {
    await postJSON(`${section.dataset.operationsUrl}/${operation.id}/retry`, {}, csrfToken());
    tell("Asked again: approve it below.", "success");
  } catch (error) {
    tell(describe(error), "error");
  }
  await refresh();
}

function render(operations) {
  const list = document.getElementById("operations");
  list.replaceChildren();
  const shown = operations.filter(
    (op) => !FINAL.has(op.status) || Date.now() - Date.parse(op.updated_at) < 10 * 60 * 1000,
  );
  document.getElementById("operations-empty").hidden = shown.length > 0;
  for (const operation of shown) {
    const item = document.createElement("li");
    item.dataset.operationId = operation.id;
    item.dataset.kind = operation.kind;
    item.dataset.status = operation.status;
    const title = document.createElement("strong");
    title.textContent = LABELS[operation.kind] || operation.label || operation.kind;
    const state = document.createElement("span");
    state.className = "operation-status";
    state.textContent = ` — ${STATUS[operation.status] || operation.status}`;
    item.append(title, state);
    if (operation.status === "failed" && (operation.revert_reason || operation.error)) {
      const why = document.createElement("small");
      why.textContent = ` (${operation.revert_reason || operation.error})`;
      item.append(why);
    }
    if (retryable(operation, operations)) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "retry-operation secondary";
      button.textContent = "Ask again";
      button.addEventListener("click", () => retry(operation, button));
      item.append(document.createElement("br"), button);
    }
    if (operation.status === "awaiting_signature") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "approve-operation";
      button.textContent = "Approve with a passkey you already have";
      button.addEventListener("click", () => approve(operation, button));
      item.append(document.createElement("br"), button);
    }
    list.append(item);
  }
  return operations;
}

let timer = null;

async function refresh() {
  clearTimeout(timer);
  try {
    const operations = render(await fetchOperations());
    const deploy = operations.find((op) => op.kind === "deploy_account");
    const status = document.getElementById("account-status");
    if (deploy?.status === "confirmed" && status.dataset.status !== "deployed") {
      status.dataset.status = "deployed";
      status.textContent = "Deployed";
    }
    const busy = operations.some((op) => !FINAL.has(op.status) && op.status !== "awaiting_signature");
    timer = setTimeout(refresh, busy ? 1500 : 5000);
  } catch (error) {
    tell("Could not load your operations; retrying…", "error");
    timer = setTimeout(refresh, 5000);
  }
}

if (section) refresh();
