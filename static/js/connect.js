// /connect: the popup a dapp opens (window.open) to ask for a session key. It talks only to the
// window that opened it, and only at the origin the page was opened for (?origin=, checked by the
// server): every message it sends names that origin, every message it takes must come from it and
// from window.opener. Messages (version 1):
//   portal → dapp  {type: "portal:ready", version: 1}
//   dapp → portal  {type: "portal:request", id, method, params}
//   portal → dapp  {type: "portal:response", id, result} | {type: "portal:response", id, error: {code, message, data}}
//   portal → dapp  {type: "portal:request", id, method: "portal_signSessionProof", params: {digest, sessionHash, account, context, chainId}}
//   dapp → portal  {type: "portal:response", id, result: {proof}} (the session key's raw signature of digest)
//   portal → dapp  {type: "portal:event", event: "progress", data: {status}}
import { describe, postJSON, requestJSON } from "./ceremony.js";

const { startAuthentication } = window.SimpleWebAuthnBrowser;
const section = document.getElementById("connect");
const dappOrigin = section.dataset.dappOrigin;
const SESSION_METHODS = new Set(["wallet_requestExecutionPermissions", "sso_createSession"]);
const USER_REJECTED = 4001;
const UNSUPPORTED_METHOD = 4200;
const INVALID_PARAMS = -32602;
const PROGRESS = {
  awaiting_signature: "Waiting for your passkey",
  signed: "Approved, about to be sent",
  submitted: "Sent to the chain",
  included: "In a block",
  confirmed: "Confirmed on chain",
  failed: "Failed",
  expired: "Expired before it was approved",
};

let csrf = section.querySelector("input[name=csrfmiddlewaretoken]").value;
let signedIn = section.dataset.signedIn === "true";
let current = null; // {id, method, params}
let preview = null;
let proof = null;
let busy = false;
const pending = new Map(); // our requests to the dapp, by id
let counter = 0;

function status(text, kind = "info") {
  const region = document.getElementById("connect-status");
  region.dataset.kind = kind;
  region.textContent = text;
}

function send(message) {
  // Never "*": a dapp that navigated elsewhere (another origin) gets nothing.
  window.opener.postMessage(message, dappOrigin);
}

function answer(id, result) {
  send({ type: "portal:response", id, result });
}

function fail(id, code, message, data) {
  send({ type: "portal:response", id, error: { code, message, data } });
}

function ask(method, params, timeout = 60000) {
  const id = `portal-${++counter}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error("The dapp did not answer in time."));
    }, timeout);
    pending.set(id, { resolve, reject, timer });
    send({ type: "portal:request", id, method, params });
  });
}

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

function eth(wei) {
  if (wei === null || wei === undefined) return "no limit";
  const value = BigInt(wei);
  const whole = value / 10n ** 18n;
  const fraction = (value % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${whole}${fraction ? `.${fraction}` : ""} ETH`;
}

function item(list, text, attributes = {}) {
  const li = document.createElement("li");
  li.textContent = text;
  for (const [key, value] of Object.entries(attributes)) li.dataset[key] = value;
  list.append(li);
}

function limitText(limit, unit) {
  if (limit.limitType === "unlimited") return "no total limit";
  const amount = unit === "ETH" ? eth(limit.limit) : `${limit.limit} ${unit}`;
  if (limit.limitType === "lifetime") return `${amount} in total`;
  return `${amount} every ${Math.round(limit.period / 3600)} h`;
}

function renderReview(review) {
  document.getElementById("review-origin").textContent =
    `${review.origin}${review.origin_seen ? "" : " (never seen before)"}`;
  const until = new Date(review.expires_at * 1000);
  document.getElementById("review-expiry").textContent =
    `${until.toISOString().replace("T", " ").slice(0, 16)} UTC (${Math.ceil(review.seconds / 3600)} hours)`;
  const spend = document.getElementById("review-spend");
  spend.replaceChildren();
  for (const { token, amount } of review.maximum_spend) {
    if (token === "native") item(spend, `ETH: at most ${eth(amount)}`, { token });
    else item(spend, `Token ${token}: at most ${amount ?? "no limit"} (smallest units)`, { token });
  }
  const transfers = document.getElementById("review-transfers");
  transfers.replaceChildren();
  for (const transfer of review.transfers) {
    item(
      transfers,
      `${transfer.target}: up to ${eth(transfer.max_value_per_use)} each time, ${limitText(transfer.value_limit, "ETH")}`,
    );
  }
  if (!review.transfers.length) item(transfers, "Nowhere");
  const calls = document.getElementById("review-calls");
  calls.replaceChildren();
  for (const call of review.calls) {
    const name = call.function || `unknown function ${call.selector}`;
    item(calls, `${name} on ${call.target}${call.named_by ? " (name given by the dapp)" : ""}`);
  }
  if (!review.calls.length) item(calls, "Nothing");
  document.getElementById("review-fees").textContent =
    review.maximum_fees === null ? "no limit" : `at most ${eth(review.maximum_fees)}`;
  document.getElementById("review-presets").textContent =
    review.presets.length ? `Within: ${review.presets.join(", ")}` : "None matches";
  const flags = document.getElementById("flags");
  flags.replaceChildren();
  for (const flag of review.flags) {
    const p = document.createElement("p");
    p.className = `flag flag-${flag.severity}`;
    p.dataset.flag = flag.code;
    p.setAttribute("role", "alert");
    p.textContent = flag.text;
    flags.append(p);
  }
  document.getElementById("review").hidden = false;
}

async function signIn() {
  const button = document.getElementById("sign-in-button");
  button.disabled = true;
  try {
    const options = await postJSON(section.dataset.loginOptionsUrl, {}, csrf);
    const credential = await startAuthentication({ optionsJSON: options.publicKey });
    await postJSON(section.dataset.loginVerifyUrl, { ceremony_id: options.ceremony_id, credential }, csrf);
    csrf = cookie("csrftoken") || csrf; // rotated by the sign-in
    signedIn = true;
    document.getElementById("sign-in").hidden = true;
    await review();
  } catch (error) {
    status(describe(error), "error");
    button.disabled = false;
  }
}

function refuse(error) {
  // A refusal of the request itself (the API's code, with its JSON-RPC code when it has one).
  const code = error.body?.rpc_code ?? INVALID_PARAMS;
  fail(current.id, code, error.message, { code: error.code });
  status(`The request was refused: ${error.message}`, "error");
  current = null;
}

async function review() {
  if (!current) return;
  if (!signedIn) {
    status("Sign in to continue.");
    document.getElementById("sign-in").hidden = false;
    return;
  }
  status("Reading the request…");
  try {
    preview = await postJSON(
      section.dataset.previewUrl,
      { origin: dappOrigin, method: current.method, params: current.params },
      csrf,
    );
  } catch (error) {
    refuse(error);
    return;
  }
  renderReview(preview.review);
  status("Asking the dapp to prove it holds the session key…");
  try {
    const result = await ask("portal_signSessionProof", {
      digest: preview.proof_digest,
      sessionHash: preview.session_hash,
      account: preview.account,
      context: preview.context,
      chainId: preview.chain_id,
    });
    proof = result?.proof;
    if (typeof proof !== "string") throw new Error("The dapp sent no proof.");
  } catch (error) {
    fail(current.id, INVALID_PARAMS, `No proof of the session key: ${error.message}`, {
      code: "no_proof",
    });
    status(`The dapp did not prove its key: ${error.message}`, "error");
    current = null;
    return;
  }
  status("Check what it asks for, then approve or reject.");
  document.getElementById("approve-button").disabled = false;
}

function progress(text) {
  const list = document.getElementById("progress");
  list.hidden = false;
  if (list.lastElementChild?.textContent === text) return;
  item(list, text);
}

async function approve() {
  if (!current || busy) return;
  busy = true;
  document.getElementById("approve-button").disabled = true;
  document.getElementById("reject-button").disabled = true;
  const request = current;
  try {
    const session = await postJSON(
      section.dataset.sessionsUrl,
      { origin: dappOrigin, method: request.method, params: request.params, proof, label: "" },
      csrf,
    );
    const operation = session.create_operation;
    status("Follow your browser’s prompt to approve with your passkey…");
    const base = `${section.dataset.operationsUrl}/${operation.id}`;
    const options = await postJSON(`${base}/options`, {}, csrf);
    const credential = await startAuthentication({ optionsJSON: options.publicKey });
    await postJSON(`${base}/sign`, { credential }, csrf);
    status("Approved. Creating the session on chain…");
    const done = await follow(session.id);
    answer(request.id, done.response);
    status("Done: the dapp has its session key. You can close this window.", "success");
    section.dataset.result = "approved";
  } catch (error) {
    fail(request.id, error.body?.rpc_code ?? -32603, describe(error), { code: error.code || "error" });
    status(describe(error), "error");
    section.dataset.result = "failed";
  } finally {
    current = null;
    busy = false;
  }
}

async function follow(sessionId) {
  for (;;) {
    const session = await requestJSON("GET", `${section.dataset.sessionsUrl}/${sessionId}`);
    const operationStatus = session.create_operation?.status;
    if (operationStatus) {
      progress(PROGRESS[operationStatus] || operationStatus);
      send({ type: "portal:event", event: "progress", data: { status: operationStatus } });
    }
    if (session.status === "active") {
      progress("Session active");
      return session;
    }
    if (session.status === "failed" || ["failed", "expired"].includes(operationStatus)) {
      throw new Error(session.create_operation?.revert_reason || "The session was not created.");
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function reject() {
  if (!current) return;
  const request = current;
  current = null;
  try {
    await postJSON(section.dataset.rejectUrl, { origin: dappOrigin, method: request.method }, csrf);
  } catch {
    // The answer to the dapp matters more than the audit line.
  }
  fail(request.id, USER_REJECTED, "User rejected the request.");
  document.getElementById("approve-button").disabled = true;
  document.getElementById("reject-button").disabled = true;
  status("Rejected. You can close this window.");
  section.dataset.result = "rejected";
}

function onMessage(event) {
  if (event.origin !== dappOrigin || event.source !== window.opener) return;
  const message = event.data;
  if (!message || typeof message !== "object" || typeof message.type !== "string") return;
  if (message.type === "portal:response") {
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    clearTimeout(waiting.timer);
    if (message.error) waiting.reject(new Error(message.error.message || "refused"));
    else waiting.resolve(message.result);
    return;
  }
  if (message.type !== "portal:request") return;
  const { id, method, params } = message;
  if (typeof id !== "string" && typeof id !== "number") return;
  if (!SESSION_METHODS.has(method)) {
    fail(id, UNSUPPORTED_METHOD, `The portal does not support ${String(method)} here.`);
    return;
  }
  if (current || busy) {
    fail(id, -32002, "Another request is already waiting for the person.");
    return;
  }
  current = { id, method, params };
  review();
}

if (!window.opener) {
  status("Open this page from a dapp: it answers the window that opened it.", "error");
} else {
  window.addEventListener("message", onMessage);
  document.getElementById("sign-in-button").addEventListener("click", signIn);
  document.getElementById("approve-button").addEventListener("click", approve);
  document.getElementById("reject-button").addEventListener("click", reject);
  send({ type: "portal:ready", version: 1 });
}
