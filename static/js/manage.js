// /account/passkeys: add a passkey (with a hint of where it should live), rename one, delete one.
// Adding and deleting need a recent passkey confirmation ("sudo mode"): when the portal answers
// 403 reauthentication_required, the page asks for a passkey right there and carries on.
import {
  PortalError,
  describe,
  requestJSON,
  say,
  setBusy,
  signalAcceptedCredentials,
} from "./ceremony.js";

const { startAuthentication, startRegistration } = window.SimpleWebAuthnBrowser;
const list = document.getElementById("passkey-list");
const addForm = document.getElementById("add-form");
const addButton = document.getElementById("add-button");
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const FLASH = "passkeys-message";

const send = (method, url, body) => requestJSON(method, url, body, csrfToken);

// Prove presence of one of the person's passkeys to the portal.
async function reauthenticate() {
  say("Confirm it’s you with one of your passkeys…");
  const options = await send("POST", list.dataset.reauthOptionsUrl, {});
  const credential = await startAuthentication({ optionsJSON: options.publicKey });
  await send("POST", list.dataset.reauthVerifyUrl, { ceremony_id: options.ceremony_id, credential });
}

// Run `action`; if the portal wants a fresh confirmation first, get it and run `action` again.
async function withReauth(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof PortalError && error.code === "reauthentication_required")) throw error;
    await reauthenticate();
    return action();
  }
}

// Reload the list from the server and say what happened once it is shown.
function reloadWith(text) {
  sessionStorage.setItem(FLASH, text);
  window.location.replace(window.location.pathname);
}

addForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  setBusy(addButton, true);
  const hint = addForm.elements.hint.value;
  const name = addForm.elements.name.value.trim();
  try {
    say("Follow your browser’s prompt to create the new passkey…");
    const options = await withReauth(() =>
      send("POST", addForm.dataset.optionsUrl, hint ? { hints: [hint] } : {}),
    );
    say("Follow your browser’s prompt to create the new passkey…");
    const credential = await startRegistration({ optionsJSON: options.publicKey });
    const body = { ceremony_id: options.ceremony_id, credential };
    if (name) body.name = name;
    const passkey = await withReauth(() => send("POST", addForm.dataset.verifyUrl, body));
    reloadWith(`Added “${passkey.name}”.`);
  } catch (error) {
    setBusy(addButton, false);
    say(describe(error), "error");
  }
});

for (const form of list.querySelectorAll(".rename-form")) {
  const field = form.elements.name;
  const fieldError = document.getElementById(field.getAttribute("aria-describedby"));
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fieldError.textContent = "";
    field.removeAttribute("aria-invalid");
    setBusy(button, true);
    try {
      const passkey = await withReauth(() => send("PATCH", form.dataset.url, { name: field.value }));
      reloadWith(`Renamed to “${passkey.name}”.`);
    } catch (error) {
      setBusy(button, false);
      const problem = error instanceof PortalError && error.code === "invalid_request";
      const text = problem && error.errors?.name ? [].concat(error.errors.name).join(" ") : describe(error);
      if (problem) {
        field.setAttribute("aria-invalid", "true");
        fieldError.textContent = text;
        field.focus();
      }
      say(text, "error");
    }
  });
}

for (const button of list.querySelectorAll(".delete-button")) {
  button.addEventListener("click", async () => {
    const { name, url } = button.dataset;
    if (!window.confirm(`Delete the passkey “${name}”? You will not be able to sign in with it again.`)) {
      return;
    }
    setBusy(button, true);
    try {
      await withReauth(() => send("DELETE", url));
      button.closest("[data-credential-id]").remove();
      await signalAcceptedCredentials(list);
      reloadWith(`Deleted “${name}”.`);
    } catch (error) {
      setBusy(button, false);
      say(describe(error), "error");
    }
  });
}

const flash = sessionStorage.getItem(FLASH);
if (flash) {
  sessionStorage.removeItem(FLASH);
  say(flash, "success");
}
signalAcceptedCredentials(list);
list.dataset.ready = "true";
