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
  withReauth as withPasskeyConfirmation,
} from "./ceremony.js";

const { startRegistration } = window.SimpleWebAuthnBrowser;
const list = document.getElementById("passkey-list");
const addForm = document.getElementById("add-form");
const addButton = document.getElementById("add-button");
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const FLASH = "passkeys-message";

const send = (method, url, body) => requestJSON(method, url, body, csrfToken);

const reauthUrls = {
  optionsUrl: list.dataset.reauthOptionsUrl,
  verifyUrl: list.dataset.reauthVerifyUrl,
};
// Run `action`, asking for a passkey first if the portal wants a fresh confirmation.
const withReauth = (action) => withPasskeyConfirmation(action, reauthUrls, csrfToken);

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
