// /connect: the popup a dapp opens (window.open, usually through the portal's EIP-1193 provider,
// connector/src/provider.js) for everything the person must see and approve. It talks only to the
// window that opened it, and only at the origin the page was opened for (?origin=, checked by the
// server): every message it sends names that origin, every message it takes must come from it and
// from window.opener. One request at a time; the window stays open for the next one.
// Messages (version 2; version 1 was the same with wallet_requestExecutionPermissions only):
//   portal → dapp  {type: "portal:ready", version: 2, chainId: "0x7a69", rpcUrl, methods: [...]}
//     (rpcUrl: the chain's public RPC URL, CHAIN_PUBLIC_RPC_URL, or "" when there is none)
//   dapp → portal  {type: "portal:request", id, method, params}
//   portal → dapp  {type: "portal:response", id, result} | {type: "portal:response", id, error: {code, message, data}}
//   portal → dapp  {type: "portal:request", id, method: "portal_signSessionProof", params: {digest, sessionHash, account, context, chainId}}
//   dapp → portal  {type: "portal:response", id, result: {proof}} (the session key's raw signature of digest)
//   portal → dapp  {type: "portal:event", event: "progress", data: {status, method}}
// Methods: eth_requestAccounts → [account]; personal_sign [hex, account] and
// eth_signTypedData_v4 [account, typedData] → signature (ERC-1271, ERC-6492-wrapped before
// deployment); eth_sendTransaction [{to, value, data}] → transaction hash once included;
// wallet_sendCalls [{version, chainId, calls}] → {id} (EIP-5792 bundle id) once approved;
// wallet_requestExecutionPermissions (ERC-7715) → the granted permissions;
// wallet_revokeExecutionPermission [{permissionContext}] → null once revoked on chain;
// wallet_disconnect → null (the window then closes). Errors: 4001 the person rejected, 4100 not
// connected or refused for the account (lockdown), 4200 unsupported, -32602 invalid params.
import { describe, postJSON, requestJSON } from "./ceremony.js";
import {
  clearReviews,
  decodeMessage,
  renderCalls,
  renderConnection,
  renderMessage,
  renderRevoke,
  renderSession,
} from "./connect-review.js";

const { startAuthentication } = window.SimpleWebAuthnBrowser;
const section = document.getElementById("connect");
const dappOrigin = section.dataset.dappOrigin;
const chainId = `0x${Number(section.dataset.chainId).toString(16)}`;
const USER_REJECTED = 4001;
const UNAUTHORIZED = 4100;
const UNSUPPORTED_METHOD = 4200;
const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;
const BUSY = -32002;
const UNSUPPORTED_CAPABILITY = 5700; // EIP-5792
const PROGRESS = {
  awaiting_signature: "Waiting for your passkey",
  signed: "Approved, about to be sent",
  submitted: "Sent to the chain",
  included: "In a block",
  confirmed: "Confirmed on chain",
  failed: "Failed",
  expired: "Expired before it was approved",
};
const TITLES = {
  eth_requestAccounts: ["Connect to a dapp", "asks to connect to your account."],
  personal_sign: ["Sign a message", "asks you to sign a message."],
  eth_signTypedData_v4: ["Sign typed data", "asks you to sign structured data."],
  eth_sendTransaction: ["Send a transaction", "asks you to send a transaction from your account."],
  wallet_sendCalls: ["Send calls", "asks you to send these calls from your account, together."],
  wallet_requestExecutionPermissions: ["Session key request", "asks to act for your account within limits."],
  sso_createSession: ["Session key request", "asks to act for your account within limits."],
  wallet_revokeExecutionPermission: ["Revoke a session key", "asks you to revoke one of its session keys."],
  wallet_disconnect: ["Disconnect", "disconnects from your account."],
};

let csrf = section.querySelector("input[name=csrfmiddlewaretoken]").value;
let signedIn = section.dataset.signedIn === "true";
let current = null; // {id, method, params}
let waitingSignIn = null; // resolves when the person has signed in
let waitingDecision = null; // {resolve, reject} while approve/reject are offered
const pending = new Map(); // our requests to the dapp, by id
let counter = 0;

class RequestError extends Error {
  // A refusal to hand to the dapp: an EIP-1193 code, and the portal's own code as data.code.
  constructor(code, message, portalCode) {
    super(message);
    this.rpcCode = code;
    this.portalCode = portalCode;
  }
}

function status(text, kind = "info") {
  const region = document.getElementById("connect-status");
  region.dataset.kind = kind;
  region.textContent = text;
}

function send(message) {
  // Never "*": a dapp that navigated elsewhere (another origin) gets nothing.
  window.opener?.postMessage(message, dappOrigin);
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

// The EIP-1193 code for a refusal of the portal's API.
function rpcCode(error) {
  if (error instanceof RequestError) return error.rpcCode;
  if (error?.body?.rpc_code) return error.body.rpc_code;
  if (error?.status === 403 || error?.status === 423) return UNAUTHORIZED;
  if (error?.status === 400) return INVALID_PARAMS;
  return INTERNAL_ERROR;
}

function progress(text) {
  const list = document.getElementById("progress");
  list.hidden = false;
  if (list.lastElementChild?.textContent === text) return;
  const li = document.createElement("li");
  li.textContent = text;
  list.append(li);
}

// --- the person: signing in, deciding ----------------------------------------------------------

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
    waitingSignIn?.();
    waitingSignIn = null;
  } catch (error) {
    status(describe(error), "error");
    button.disabled = false;
  }
}

function ensureSignedIn() {
  if (signedIn) return Promise.resolve();
  status("Sign in to continue.");
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-in-button").disabled = false;
  return new Promise((resolve) => {
    waitingSignIn = resolve;
  });
}

// Offer approve/reject; resolves on approve, throws a 4001 RequestError on reject.
function decision(approveLabel) {
  const approve = document.getElementById("approve-button");
  approve.textContent = approveLabel;
  approve.disabled = false;
  document.getElementById("reject-button").disabled = false;
  document.getElementById("decision").hidden = false;
  status("Check what it asks for, then approve or reject.");
  return new Promise((resolve, reject) => {
    waitingDecision = { resolve, reject };
  });
}

function decided(approved) {
  if (!waitingDecision) return;
  const { resolve, reject } = waitingDecision;
  waitingDecision = null;
  document.getElementById("approve-button").disabled = true;
  document.getElementById("reject-button").disabled = true;
  if (approved) resolve();
  else reject(new RequestError(USER_REJECTED, "User rejected the request.", "user_rejected"));
}

async function passkey(optionsUrl, body) {
  status("Follow your browser’s prompt to approve with your passkey…");
  const options = await postJSON(optionsUrl, body, csrf);
  const credential = await startAuthentication({ optionsJSON: options.publicKey });
  return { options, credential };
}

async function approveOperation(operation) {
  const base = `${section.dataset.operationsUrl}/${operation.id}`;
  const { credential } = await passkey(`${base}/options`, {});
  await postJSON(`${base}/sign`, { credential }, csrf);
}

// The dapp's connection for this origin, or a 4100 refusal.
async function requireConnection() {
  const connections = await requestJSON("GET", section.dataset.dappsUrl);
  const connection = connections.find((c) => c.origin === dappOrigin && c.active);
  if (!connection) {
    throw new RequestError(UNAUTHORIZED, `${dappOrigin} is not connected to your account.`, "not_connected");
  }
  return connection;
}

// --- the methods ---------------------------------------------------------------------------------

async function connectAccount() {
  // Any connection, even a past one, means the person has approved this origin before.
  const connections = await requestJSON("GET", `${section.dataset.dappsUrl}?all=1`);
  renderConnection({ seen: connections.some((c) => c.origin === dappOrigin) });
  await decision("Connect");
  const connected = await postJSON(`${section.dataset.dappsUrl}/connect`, { origin: dappOrigin }, csrf);
  status(`Connected: ${dappOrigin} sees ${connected.accounts[0]}. You can close this window.`, "success");
  return connected.accounts;
}

function personalSignRequest(params) {
  const [data, address] = params;
  if (typeof data !== "string") throw new RequestError(INVALID_PARAMS, "personal_sign takes [message, account].");
  const shown = decodeMessage(data);
  return {
    address,
    shown,
    body: shown.text !== undefined ? { kind: "personal_sign", message: shown.text } : { kind: "personal_sign", raw: shown.raw },
  };
}

function typedDataRequest(params) {
  const [address, given] = params;
  let typedData = given;
  try {
    if (typeof given === "string") typedData = JSON.parse(given);
  } catch {
    throw new RequestError(INVALID_PARAMS, "The typed data is not JSON.");
  }
  if (!typedData || typeof typedData !== "object" || !typedData.types || !typedData.primaryType) {
    throw new RequestError(INVALID_PARAMS, "eth_signTypedData_v4 takes [account, {types, primaryType, domain, message}].");
  }
  return { address, shown: { typedData }, body: { kind: "typed_data", typed_data: typedData } };
}

async function signMessage(method, params) {
  const connection = await requireConnection();
  const request = method === "personal_sign" ? personalSignRequest(params) : typedDataRequest(params);
  renderMessage({ account: connection.account, ...request.shown });
  await decision("Sign with a passkey");
  const { options, credential } = await passkey(section.dataset.signatureOptionsUrl, {
    ...request.body,
    origin: dappOrigin,
  });
  const signed = await postJSON(
    section.dataset.signatureVerifyUrl,
    { ceremony_id: options.ceremony_id, credential },
    csrf,
  );
  status("Signed. You can close this window.", "success");
  return signed.signature;
}

function callsOf(method, params) {
  const request = params?.[0];
  if (!request || typeof request !== "object") throw new RequestError(INVALID_PARAMS, `${method} takes one request object.`);
  if (method === "eth_sendTransaction") {
    if (!request.to) throw new RequestError(INVALID_PARAMS, "A transaction needs `to` (contract creation is not supported).");
    return [{ to: request.to, value: request.value ?? "0x0", data: request.data ?? request.input ?? "0x" }];
  }
  // EIP-5792: a capability the dapp requires (not marked optional) that the portal lacks fails
  // the whole request; the portal supports none beyond atomic execution, which it always does.
  const capabilities = [request.capabilities, ...(request.calls || []).map((call) => call?.capabilities)];
  for (const set of capabilities) {
    for (const [name, value] of Object.entries(set || {})) {
      if (name !== "atomic" && !value?.optional) {
        throw new RequestError(UNSUPPORTED_CAPABILITY, `The portal does not support the capability ${name}.`, "unsupported_capability");
      }
    }
  }
  if (request.chainId && BigInt(request.chainId) !== BigInt(chainId)) {
    throw new RequestError(INVALID_PARAMS, `This account is on chain ${chainId}, not ${request.chainId}.`, "wrong_chain");
  }
  if (!Array.isArray(request.calls) || !request.calls.length) throw new RequestError(INVALID_PARAMS, "No calls.");
  return request.calls.map((call) => ({ to: call.to, value: call.value ?? "0x0", data: call.data ?? "0x" }));
}

async function followCalls(bundleId, method, until) {
  for (;;) {
    const bundle = await requestJSON("GET", `${section.dataset.dappsUrl}/calls/${bundleId}`);
    const operationStatus = bundle.operation?.status;
    if (operationStatus) {
      progress(PROGRESS[operationStatus] || operationStatus);
      send({ type: "portal:event", event: "progress", data: { status: operationStatus, method } });
    }
    if (until(bundle)) return bundle;
    if (bundle.status >= 400) throw new RequestError(INTERNAL_ERROR, "The calls were not sent.", "calls_failed");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function sendCalls(method, params) {
  await requireConnection();
  const calls = callsOf(method, params);
  const idempotencyKey = crypto.randomUUID();
  status("Simulating the calls…");
  let preview;
  try {
    preview = await postJSON(`${section.dataset.dappsUrl}/calls/preview`, { origin: dappOrigin, calls }, csrf);
  } catch (error) {
    if (error.status === 423) {
      throw new RequestError(UNAUTHORIZED, `Your account is in lockdown: ${error.message}`, error.code);
    }
    throw error;
  }
  renderCalls(preview.review);
  await decision("Approve with a passkey");
  const created = await postJSON(
    `${section.dataset.dappsUrl}/calls`,
    { origin: dappOrigin, calls, idempotency_key: idempotencyKey },
    csrf,
  );
  await approveOperation(created.operation);
  if (method === "wallet_sendCalls") {
    status("Approved. The calls are on their way; you can close this window.", "success");
    // The dapp follows them with wallet_getCallsStatus; the window shows their progress too.
    followCalls(created.id, method, (bundle) => bundle.status !== 100).catch(() => {});
    return { id: created.id };
  }
  status("Approved. Waiting for the transaction…");
  const bundle = await followCalls(created.id, method, (b) => b.status !== 100 && b.receipts?.length);
  status("Sent. You can close this window.", "success");
  return bundle.receipts[0].transactionHash;
}

async function followSession(sessionId) {
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

async function requestSession(method, params) {
  status("Reading the request…");
  const preview = await postJSON(section.dataset.previewUrl, { origin: dappOrigin, method, params }, csrf);
  renderSession(preview.review);
  status("Asking the dapp to prove it holds the session key…");
  let proof;
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
    throw new RequestError(INVALID_PARAMS, `No proof of the session key: ${error.message}`, "no_proof");
  }
  try {
    await decision("Approve with a passkey");
  } catch (rejected) {
    try {
      await postJSON(section.dataset.rejectUrl, { origin: dappOrigin, method }, csrf);
    } catch {
      // The answer to the dapp matters more than the audit line.
    }
    throw rejected;
  }
  const session = await postJSON(
    section.dataset.sessionsUrl,
    { origin: dappOrigin, method, params, proof, label: "" },
    csrf,
  );
  await approveOperation(session.create_operation);
  status("Approved. Creating the session on chain…");
  const done = await followSession(session.id);
  status("Done: the dapp has its session key. You can close this window.", "success");
  return done.response;
}

async function revokeSession(params) {
  const context = params?.[0]?.permissionContext;
  if (typeof context !== "string") {
    throw new RequestError(INVALID_PARAMS, "wallet_revokeExecutionPermission takes [{permissionContext}].");
  }
  const query = new URLSearchParams({ context, origin: dappOrigin });
  const sessions = await requestJSON("GET", `${section.dataset.sessionsUrl}?${query}`);
  const session = sessions.find((s) => s.origin === dappOrigin);
  if (!session || !["active", "expired"].includes(session.status)) {
    throw new RequestError(INVALID_PARAMS, "No open session key of this dapp has that context.", "unknown_session");
  }
  renderRevoke(session);
  await decision("Revoke with a passkey");
  const operation = await postJSON(`${section.dataset.sessionsUrl}/${session.id}/revoke`, {}, csrf);
  await approveOperation(operation);
  status("Approved. Revoking on chain…");
  for (;;) {
    const current = await requestJSON("GET", `${section.dataset.operationsUrl}/${operation.id}`);
    progress(PROGRESS[current.status] || current.status);
    if (current.status === "confirmed") break;
    if (["failed", "expired"].includes(current.status)) {
      throw new RequestError(INTERNAL_ERROR, `The revocation ${current.status}.`, "revoke_failed");
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  status("Revoked. You can close this window.", "success");
  return null;
}

async function disconnect() {
  if (signedIn) await postJSON(`${section.dataset.dappsUrl}/disconnect`, { origin: dappOrigin }, csrf);
  status("Disconnected.", "success");
  setTimeout(() => window.close(), 500);
  return null;
}

const HANDLERS = {
  eth_requestAccounts: () => connectAccount(),
  personal_sign: (params) => signMessage("personal_sign", params),
  eth_signTypedData_v4: (params) => signMessage("eth_signTypedData_v4", params),
  eth_sendTransaction: (params) => sendCalls("eth_sendTransaction", params),
  wallet_sendCalls: (params) => sendCalls("wallet_sendCalls", params),
  wallet_requestExecutionPermissions: (params) => requestSession("wallet_requestExecutionPermissions", params),
  sso_createSession: (params) => requestSession("sso_createSession", params),
  wallet_revokeExecutionPermission: (params) => revokeSession(params),
  wallet_disconnect: () => disconnect(),
};

async function handle(request) {
  current = request;
  section.dataset.result = "";
  section.dataset.method = request.method;
  const [title, summary] = TITLES[request.method];
  document.getElementById("request-title").textContent = title;
  document.getElementById("request-summary").textContent = summary;
  document.getElementById("progress").replaceChildren();
  document.getElementById("progress").hidden = true;
  document.getElementById("decision").hidden = true;
  clearReviews();
  try {
    if (request.method !== "wallet_disconnect") await ensureSignedIn();
    const result = await HANDLERS[request.method](request.params ?? []);
    answer(request.id, result);
    section.dataset.result = "approved";
  } catch (error) {
    const code = rpcCode(error);
    const portalCode = error.portalCode || error.code || "error";
    const message = error instanceof RequestError ? error.message : describe(error);
    fail(request.id, code, message, { code: portalCode });
    if (code === USER_REJECTED) {
      status("Rejected. You can close this window.");
      section.dataset.result = "rejected";
    } else {
      status(`The request was refused: ${message}`, "error");
      section.dataset.result = "failed";
    }
    section.dataset.code = portalCode;
  } finally {
    document.getElementById("approve-button").disabled = true;
    document.getElementById("reject-button").disabled = true;
    current = null;
  }
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
  if (!Object.hasOwn(HANDLERS, method)) {
    fail(id, UNSUPPORTED_METHOD, `The portal does not support ${String(method)} here.`);
    return;
  }
  if (params !== undefined && !Array.isArray(params)) {
    fail(id, INVALID_PARAMS, "params must be an array.");
    return;
  }
  if (current) {
    fail(id, BUSY, "Another request is already waiting for the person.");
    return;
  }
  handle({ id, method, params });
}

if (!window.opener) {
  status("Open this page from a dapp: it answers the window that opened it.", "error");
} else {
  window.addEventListener("message", onMessage);
  document.getElementById("sign-in-button").addEventListener("click", signIn);
  document.getElementById("approve-button").addEventListener("click", () => decided(true));
  document.getElementById("reject-button").addEventListener("click", () => decided(false));
  send({
    type: "portal:ready",
    version: 2,
    chainId,
    rpcUrl: section.dataset.publicRpcUrl || "",
    methods: Object.keys(HANDLERS),
  });
}
