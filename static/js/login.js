// /login: passkey autofill on the username field (conditional UI) from page load, and a
// "Sign in with a passkey" button that cancels the pending autofill request before starting its
// own: discoverable, or username-first when a username is typed in.
import { PortalError, describe, postJSON, say, setBusy, wasAborted } from "./ceremony.js";

const { startAuthentication, browserSupportsWebAuthnAutofill, WebAuthnAbortService } =
  window.SimpleWebAuthnBrowser;
const form = document.getElementById("login-form");
const button = document.getElementById("passkey-button");
let buttonPressed = false;

async function signIn(options, useBrowserAutofill) {
  const credential = await startAuthentication({
    optionsJSON: options.publicKey,
    useBrowserAutofill,
  });
  say("Checking your passkey…");
  const csrfToken = form.elements.csrfmiddlewaretoken.value;
  const body = { ceremony_id: options.ceremony_id, credential };
  const result = await postJSON(form.action, body, csrfToken);
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
