// /signup: ask the API for creation options, let the browser create the passkey, post it to the
// page's verify endpoint (which starts a session), then go to the account page.
import { describe, postJSON, say, setBusy } from "./ceremony.js";

const { startRegistration } = window.SimpleWebAuthnBrowser;
const form = document.getElementById("signup-form");
const button = document.getElementById("signup-button");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  setBusy(button, true);
  say("Follow your browser’s prompt to create your passkey…");
  try {
    const options = await postJSON(form.dataset.optionsUrl, {
      username: form.elements.username.value.trim(),
      display_name: form.elements.display_name.value.trim(),
    });
    const credential = await startRegistration({ optionsJSON: options.publicKey });
    const csrfToken = form.elements.csrfmiddlewaretoken.value;
    const result = await postJSON(
      form.action,
      { ceremony_id: options.ceremony_id, credential },
      csrfToken,
    );
    say("Your account is ready. Opening it…", "success");
    window.location.assign(result.redirect);
  } catch (error) {
    say(describe(error), "error");
    setBusy(button, false);
  }
});
