// /login: passkey autofill on the username field (conditional UI) from page load, and a
// "Sign in with a passkey" button that cancels the pending autofill request before starting its
// own: discoverable, or username-first when a username is typed in. A local ?next= path (the
// admin's login sends people here) is where a successful sign-in goes.
import { PortalError, describe, postJSON, say, setBusy, wasAborted } from "./ceremony.js";

const { startAuthentication, browserSupportsWebAuthnAutofill, WebAuthnAbortService } =
  window.SimpleWebAuthnBrowser;
const form = document.getElementById("login-form");
const button = document.getElementById("passkey-button");
let buttonPressed = false;

// Where to go after signing in: a local path from ?next=, or the portal's default.
function nextPath() {
  const next = new URLSearchParams(window.location.search).get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") ? next : "";
}

// WebAuthn Signal API (feature-detected): the device offered a passkey the portal does not know
// (deleted here, or never registered), so it may hide it from now on.
async function signalUnknown(rpId, credentialId) {
  if (typeof window.PublicKeyCredential?.signalUnknownCredential !== "function") return;
  if (!rpId || !credentialId) return;
  try {
    await PublicKeyCredential.signalUnknownCredential({ rpId, credentialId });
    form.dataset.signalled = "unknown";
  } catch {
    // Only a hint to the device.
  }
}

async function signIn(options, useBrowserAutofill) {
  const credential = await startAuthentication({
    optionsJSON: options.publicKey,
    useBrowserAutofill,
  });
  say("Checking your passkey…");
  const csrfToken = form.elements.csrfmiddlewaretoken.value;
  const body = { ceremony_id: options.ceremony_id, credential };
  const next = nextPath();
  if (next) body.next = next;
  let result;
  try {
    result = await postJSON(form.action, body, csrfToken);
  } catch (error) {
    if (error instanceof PortalError && error.code === "unknown_credential") {
      await signalUnknown(options.publicKey.rpId || window.location.hostname, credential.id);
    }
    throw error;
  }
  say("Signed in. Opening your account…", "success");
  window.location.assign(result.redirect);
}

async function offerAutofill() {
  if (!(await browserSupportsWebAuthnAutofill())) return;
  try {
    const options = await postJSON(form.dataset.optionsUrl, {});
    if (buttonPressed) return; // the button's own request is under way: leave it alone
    form.dataset.autofill = "pending";
    await signIn(options, true);
  } catch (error) {
    form.dataset.autofill = wasAborted(error) ? "cancelled" : "failed";
    // The person pressed nothing: only a refusal by the portal is worth a word.
    if (error instanceof PortalError) say(describe(error), "error");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  buttonPressed = true;
  WebAuthnAbortService.cancelCeremony();
  setBusy(button, true);
  say("Follow your browser’s prompt to use your passkey…");
  const username = form.elements.username.value.trim();
  try {
    const options = await postJSON(form.dataset.optionsUrl, username ? { username } : {});
    await signIn(options, false);
  } catch (error) {
    setBusy(button, false);
    buttonPressed = false;
    if (wasAborted(error)) return; // a newer request replaced ours; the person can press again
    say(describe(error), "error");
    offerAutofill();
  }
});

offerAutofill();
