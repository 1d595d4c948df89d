// What the /connect popup shows of a request before the person decides: the connection, a message
// (text or typed-data fields), calls (decoded, with the simulation's balance change), a session key's
// limits, a session to revoke. Only textContent is written: everything here comes from a dapp.

const $ = (id) => document.getElementById(id);

function eth(wei) {
  if (wei === null || wei === undefined) return "no limit";
  const value = BigInt(wei);
  const sign = value < 0n ? "-" : "";
  const size = value < 0n ? -value : value;
  const whole = size / 10n ** 18n;
  const fraction = (size % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${sign}${whole}${fraction ? `.${fraction}` : ""} ETH`;
}

function item(list, text, attributes = {}) {
  const li = document.createElement("li");
  li.textContent = text;
  for (const [key, value] of Object.entries(attributes)) li.dataset[key] = value;
  list.append(li);
  return li;
}

// Hide every review, and the flags of the previous request.
export function clearReviews() {
  for (const article of document.querySelectorAll(".request-review")) article.hidden = true;
  $("flags").replaceChildren();
}

export function renderFlags(flags) {
  const region = $("flags");
  region.replaceChildren();
  for (const flag of flags) {
    const p = document.createElement("p");
    p.className = `flag flag-${flag.severity}`;
    p.dataset.flag = flag.code;
    p.setAttribute("role", "alert");
    p.textContent = flag.text;
    region.append(p);
  }
}

export function renderConnection({ seen }) {
  renderFlags(
    seen
      ? []
      : [
          {
            code: "new_origin",
            severity: "warning",
            text: "You have never connected this site before. Check its address: only connect sites you trust.",
          },
        ],
  );
  $("connection-review").hidden = false;
}

// personal_sign's message is hex (viem and most dapps send text as UTF-8 hex): shown as text when
// it is readable text, as hex otherwise.
export function decodeMessage(hex) {
  if (typeof hex !== "string") return { raw: null };
  if (!/^0x([0-9a-fA-F]{2})*$/.test(hex)) return { text: hex };
  const bytes = new Uint8Array(hex.slice(2).match(/../g)?.map((b) => parseInt(b, 16)) || []);
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (!/[\u0000-\u0008\u000e-\u001f]/.test(text)) return { text };
  } catch {
    // Not UTF-8: shown as bytes.
  }
  return { raw: hex };
}

function typedFields(list, value, prefix = "") {
  if (value !== null && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) typedFields(list, inner, prefix ? `${prefix}.${key}` : key);
  } else {
    item(list, `${prefix}: ${String(value)}`, { field: prefix });
  }
}

export function renderMessage({ account, text, raw, typedData }) {
  $("message-account").textContent = account;
  const fields = $("message-fields");
  fields.replaceChildren();
  if (typedData) {
    $("message-kind").textContent = `Typed data: ${typedData.primaryType}`;
    $("message-text").textContent = "";
    $("message-text").hidden = true;
    typedFields(fields, { domain: typedData.domain, message: typedData.message });
  } else {
    $("message-kind").textContent = text !== undefined ? "Message" : "Message (bytes, not text)";
    $("message-text").hidden = false;
    $("message-text").textContent = text !== undefined ? text : raw;
  }
  renderFlags([]);
  $("message-review").hidden = false;
}

export function renderCalls(review) {
  const list = $("calls-list");
  list.replaceChildren();
  let total = 0n;
  for (const call of review.calls) {
    total += BigInt(call.value || "0");
    const what = call.function
      ? `${call.function}${call.arguments ? ` (${call.arguments.map(String).join(", ")})` : ""}`
      : call.selector
        ? `unknown function ${call.selector}`
        : "a plain transfer";
    item(list, `${what} on ${call.target}, sending ${eth(call.value || "0")}`, { target: call.target });
  }
  $("calls-value").textContent = eth(total);
  const simulation = review.simulation;
  const outcome = $("calls-simulation");
  const balance = $("calls-balance");
  balance.replaceChildren();
  if (!simulation) {
    outcome.textContent = "Could not be simulated";
  } else if (simulation.success) {
    outcome.textContent = "Succeeds";
  } else {
    outcome.textContent = `Fails: ${simulation.revert_reason || "reverted"}`;
  }
  outcome.dataset.success = String(Boolean(simulation?.success));
  const change = simulation?.balance_change;
  if (change) {
    item(balance, `ETH: ${eth(change.native)}`, { token: "native" });
    for (const token of change.tokens || []) item(balance, `Token ${token.token}: ${token.change}`, { token: token.token });
  } else {
    item(balance, "Unknown");
  }
  renderFlags(review.flags || []);
  $("calls-review").hidden = false;
}

function limitText(limit, unit) {
  if (limit.limitType === "unlimited") return "no total limit";
  const amount = unit === "ETH" ? eth(limit.limit) : `${limit.limit} ${unit}`;
  if (limit.limitType === "lifetime") return `${amount} in total`;
  return `${amount} every ${Math.round(limit.period / 3600)} h`;
}

export function renderSession(review) {
  $("review-origin").textContent = `${review.origin}${review.origin_seen ? "" : " (never seen before)"}`;
  const until = new Date(review.expires_at * 1000);
  $("review-expiry").textContent =
    `${until.toISOString().replace("T", " ").slice(0, 16)} UTC (${Math.ceil(review.seconds / 3600)} hours)`;
  const spend = $("review-spend");
  spend.replaceChildren();
  for (const { token, amount } of review.maximum_spend) {
    if (token === "native") item(spend, `ETH: at most ${eth(amount)}`, { token });
    else item(spend, `Token ${token}: at most ${amount ?? "no limit"} (smallest units)`, { token });
  }
  const transfers = $("review-transfers");
  transfers.replaceChildren();
  for (const transfer of review.transfers) {
    item(
      transfers,
      `${transfer.target}: up to ${eth(transfer.max_value_per_use)} each time, ${limitText(transfer.value_limit, "ETH")}`,
    );
  }
  if (!review.transfers.length) item(transfers, "Nowhere");
  const calls = $("review-calls");
  calls.replaceChildren();
  for (const call of review.calls) {
    const name = call.function || `unknown function ${call.selector}`;
    item(calls, `${name} on ${call.target}${call.named_by ? " (name given by the dapp)" : ""}`);
  }
  if (!review.calls.length) item(calls, "Nothing");
  $("review-fees").textContent = review.maximum_fees === null ? "no limit" : `at most ${eth(review.maximum_fees)}`;
  $("review-presets").textContent = review.presets.length ? `Within: ${review.presets.join(", ")}` : "None matches";
  renderFlags(review.flags);
  $("review").hidden = false;
}

export function renderRevoke(session) {
  $("revoke-signer").textContent = session.signer;
  $("revoke-created").textContent = session.created_at.replace("T", " ").slice(0, 16);
  $("revoke-expiry").textContent = session.expires_at.replace("T", " ").slice(0, 16);
  renderFlags([]);
  $("revoke-review").hidden = false;
}
