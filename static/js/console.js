// /console/: the lockdown switch. Turning it on or off needs a fresh passkey confirmation
// (sudo mode): when the API answers 403 reauthentication_required, the page asks for one.
import { describe, requestJSON, say, setBusy, withReauth } from "./ceremony.js";

const section = document.getElementById("lockdown");
const form = document.getElementById("lockdown-form");
const button = document.getElementById("lockdown-button");
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const reauthUrls = {
  optionsUrl: section.dataset.reauthOptionsUrl,
  verifyUrl: section.dataset.reauthVerifyUrl,
};

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const enabled = form.dataset.enable === "true";
  const reason = enabled ? form.elements.reason.value.trim() : "";
  setBusy(button, true);
  try {
    await withReauth(
      () => requestJSON("POST", section.dataset.apiUrl, { enabled, reason }, csrfToken),
      reauthUrls,
      csrfToken,
    );
    window.location.reload();
  } catch (error) {
    setBusy(button, false);
    say(describe(error), "error");
  }
});
