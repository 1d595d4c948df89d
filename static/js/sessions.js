// /account/sessions: each session with what is left of its limits (read from chain, as bars), its
// expiry and dapp; revoke one or all, approved with a passkey, with live progress.
import { describe, postJSON, requestJSON } from "./ceremony.js";

const { startAuthentication } = window.SimpleWebAuthnBrowser;
const page = document.getElementById("sessions-page");
const csrf = page.querySelector("input[name=csrfmiddlewaretoken]").value;
const OPEN = new Set(["active", "expired"]);
const STATUS = {
  pending_approval: "Waiting for approval",
  active: "Active",
  expired: "Expired (still open on chain until revoked)",
  revoked: "Revoked",
  failed: "Never created",
};

function tell(text, kind = "info") {
  const region = document.getElementById("sessions-message");
  region.dataset.kind = kind;
  region.textContent = text;
}

function eth(wei) {
  const value = BigInt(wei);
  const fraction = (value % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${value / 10n ** 18n}${fraction ? `.${fraction}` : ""} ETH`;
}

function limitRow(limit) {
  const row = document.createElement("div");
  row.className = "session-limit";
  row.dataset.what = limit.what;
  const where = limit.what === "fee" ? "Fees" : `${limit.what} ${limit.function || limit.selector || ""} ${limit.target}`;
  const label = document.createElement("small");
  const native = limit.what !== "argument";
  if (limit.remaining === null) {
    label.textContent = `${where}: ${limit.limit.limitType === "unlimited" ? "no limit" : "unknown"}`;
    row.append(label);
    return row;
  }
  const left = native ? eth(limit.remaining) : limit.remaining;
  const total = native ? eth(limit.limit.limit) : limit.limit.limit;
  label.textContent = `${where}: ${left} left of ${total}${limit.limit.limitType === "allowance" ? " this period" : ""}`;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = limit.percent_left ?? 0;
  bar.dataset.remaining = limit.remaining;
  row.append(label, bar);
  return row;
}

async function approveOperation(operation) {
  const base = `${page.dataset.operationsUrl}/${operation.id}`;
  const options = await postJSON(`${base}/options`, {}, csrf);
  const credential = await startAuthentication({ optionsJSON: options.publicKey });
  await postJSON(`${base}/sign`, { credential }, csrf);
  tell("Approved: revoking on chain…", "success");
  for (let i = 0; i < 120; i += 1) {
    const current = await requestJSON("GET", base);
    if (["confirmed", "failed", "expired"].includes(current.status)) {
      tell(current.status === "confirmed" ? "Revoked on chain." : `Revocation ${current.status}.`,
        current.status === "confirmed" ? "success" : "error");
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await render();
}

async function revoke(url, button) {
  button.disabled = true;
  try {
    const operation = await postJSON(url, {}, csrf);
    tell("Follow your browser’s prompt to approve with your passkey…");
    await approveOperation(operation);
  } catch (error) {
    tell(describe(error), "error");
    button.disabled = false;
  }
}

async function card(session) {
  const article = document.createElement("article");
  article.className = "session";
  article.dataset.sessionId = session.id;
  article.dataset.status = session.status;
  const title = document.createElement("h3");
  title.textContent = session.origin;
  const meta = document.createElement("p");
  meta.textContent = `${STATUS[session.status] || session.status} · until ${session.expires_at.replace("T", " ").slice(0, 16)} UTC · key ${session.signer}`;
  article.append(title, meta);
  if (session.suspended_at && OPEN.has(session.status)) {
    const warning = document.createElement("p");
    warning.className = "flag flag-danger";
    warning.dataset.flag = "suspended";
    warning.setAttribute("role", "alert");
    warning.textContent =
      "An operator suspended this session: the portal relays nothing more for it, but its key still works on chain until you revoke it.";
    article.append(warning);
  }
  if (OPEN.has(session.status)) {
    const detail = await requestJSON("GET", `${page.dataset.sessionsUrl}/${session.id}`);
    for (const limit of detail.limits) article.append(limitRow(limit));
    const button = document.createElement("button");
    button.type = "button";
    button.className = "revoke-session secondary outline";
    button.textContent = "Revoke";
    button.addEventListener("click", () => revoke(`${page.dataset.sessionsUrl}/${session.id}/revoke`, button));
    article.append(button);
  }
  return article;
}

async function render() {
  const container = document.getElementById("sessions");
  try {
    const sessions = await requestJSON("GET", page.dataset.sessionsUrl);
    const cards = await Promise.all(sessions.map(card));
    container.replaceChildren(...cards);
    if (!sessions.length) container.textContent = "No dapp has a session key.";
    document.getElementById("revoke-all").hidden = !sessions.some((s) => OPEN.has(s.status));
  } catch (error) {
    tell(describe(error), "error");
  }
}

document.getElementById("revoke-all").addEventListener("click", (event) =>
  revoke(page.dataset.revokeAllUrl, event.currentTarget),
);
render();
