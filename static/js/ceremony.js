// What the sign-up and sign-in pages share: posting JSON to the portal, and saying what went wrong
// in words a person can act on. The WebAuthn work itself is done by @simplewebauthn/browser.

export class PortalError extends Error {
  constructor(status, body) {
    super(body?.detail || `The portal answered with an error (HTTP ${status}).`);
    this.name = "PortalError";
    this.status = status;
    this.code = body?.code || "error";
    this.errors = body?.errors || null; // per-field messages of an invalid_request
    this.body = body || null; // the whole answer (extra fields such as rpc_code)
  }
}

// Send a JSON body with `method`; resolve with the JSON answer (null for 204), or throw a
// PortalError carrying the API's detail.
export async function requestJSON(method, url, body, csrfToken) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrfToken) headers["X-CSRFToken"] = csrfToken;
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new PortalError(response.status, answer);
  return answer;
}

// POST a JSON body; resolve with the JSON answer, or throw a PortalError carrying the API's detail.
export function postJSON(url, body, csrfToken) {
  return requestJSON("POST", url, body, csrfToken);
}

// WebAuthn Signal API (feature-detected): tell the device which of its passkeys for this site the
// portal still accepts, so it can hide the ones that were deleted. `element` carries
// data-rp-id and data-user-id; each passkey inside it carries data-credential-id (base64url).
export async function signalAcceptedCredentials(element) {
  if (typeof window.PublicKeyCredential?.signalAllAcceptedCredentials !== "function") return;
  const { rpId, userId } = element.dataset;
  if (!rpId || !userId) return;
  const allAcceptedCredentialIds = [...element.querySelectorAll("[data-credential-id]")].map(
    (passkey) => passkey.dataset.credentialId,
  );
  try {
    await PublicKeyCredential.signalAllAcceptedCredentials({
      rpId,
      userId,
      allAcceptedCredentialIds,
    });
    element.dataset.signalled = "accepted";
  } catch {
    // Only a hint to the device: nothing the person needs to hear about.
  }
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

// Run `action`; when the portal answers 403 reauthentication_required ("sudo mode"), ask for one
// of the person's passkeys (reauth options → the browser's prompt → reauth verify), then run it
// again. `urls` carries optionsUrl and verifyUrl.
export async function withReauth(action, urls, csrfToken) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof PortalError && error.code === "reauthentication_required")) throw error;
    say("Confirm it’s you with one of your passkeys…");
    const options = await requestJSON("POST", urls.optionsUrl, {}, csrfToken);
    const credential = await window.SimpleWebAuthnBrowser.startAuthentication({
      optionsJSON: options.publicKey,
    });
    await requestJSON(
      "POST",
      urls.verifyUrl,
      { ceremony_id: options.ceremony_id, credential },
      csrfToken,
    );
    return action();
  }
}
