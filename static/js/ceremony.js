// What the sign-up and sign-in pages share: posting JSON to the portal, and saying what went wrong
// in words a person can act on. The WebAuthn work itself is done by @simplewebauthn/browser.

export class PortalError extends Error {
  constructor(status, body) {
    super(body?.detail || `The portal answered with an error (HTTP ${status}).`);
    this.name = "PortalError";
    this.status = status;
    this.code = body?.code || "error";
  }
}

// POST a JSON body; resolve with the JSON answer, or throw a PortalError carrying the API's detail.
export async function postJSON(url, body, csrfToken) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (csrfToken) headers["X-CSRFToken"] = csrfToken;
  const response = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new PortalError(response.status, answer);
  return answer;
}

// A pending request that was cancelled on purpose (by us, not the person): nothing to say.
export function wasAborted(error) {
  return error?.code === "ERROR_CEREMONY_ABORTED" || error?.name === "AbortError";
}

// A readable sentence for anything a ceremony can throw.
export function describe(error) {
  if (error instanceof PortalError) return error.message;
  switch (error?.name) {
    case "NotAllowedError":
      return "The passkey prompt was closed or timed out. Try again.";
    case "InvalidStateError":
      return "This device already holds a passkey for this account.";
    case "SecurityError":
      return "Passkeys cannot be used from this address. Open the portal at its usual address.";
    case "NotSupportedError":
      return "This device cannot create a passkey of the kind the portal needs.";
    default:
      if (error instanceof TypeError && /fetch|network/i.test(error.message)) {
        return "The portal could not be reached. Check your connection and try again.";
      }
      if (!window.PublicKeyCredential) return "This browser does not support passkeys.";
      return `Something went wrong: ${error?.message || error}`;
  }
}

// Show a message in the page's live region; kind is "info", "error" or "success".
export function say(text, kind = "info") {
  const region = document.getElementById("message");
  region.dataset.kind = kind;
  region.textContent = text;
}

export function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", busy ? "true" : "false");
}
