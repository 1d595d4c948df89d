// /account: after sign-in (and on every visit) tell the device which of its passkeys for this site
// the portal still accepts (WebAuthn Signal API, feature-detected); and save the person's details
// (a new email address needs a passkey confirmation), then tell the device the new display name.
import {
  describe,
  requestJSON,
  say,
  setBusy,
  signalAcceptedCredentials,
  withReauth,
} from "./ceremony.js";

signalAcceptedCredentials(document.getElementById("passkey-list"));

const form = document.getElementById("details-form");
const button = document.getElementById("details-button");
const csrfToken = form.elements.csrfmiddlewaretoken.value;
const reauthUrls = {
  optionsUrl: form.dataset.reauthOptionsUrl,
  verifyUrl: form.dataset.reauthVerifyUrl,
};

async function signalDetails(displayName) {
  if (typeof window.PublicKeyCredential?.signalCurrentUserDetails !== "function") return;
  const { rpId, userId, username } = form.dataset;
  try {
    await PublicKeyCredential.signalCurrentUserDetails({
      rpId,
      userId,
      name: username,
      displayName: displayName || username,
    });
    form.dataset.signalled = "details";
  } catch {
    // Only a hint to the device.
  }
}

// Sign out another browser or API token, or all of them at once (a passkey confirmation first
// when the last one is too old), then show the list again.
async function signOutElsewhere(button, method, successText) {
  setBusy(button, true);
  try {
    await withReauth(() => requestJSON(method, button.dataset.url, undefined, csrfToken), reauthUrls, csrfToken);
    say(successText, "success");
    window.location.reload();
  } catch (error) {
    say(describe(error), "error");
    setBusy(button, false);
  }
}

for (const button of document.querySelectorAll(".signout-button")) {
  button.addEventListener("click", () => signOutElsewhere(button, "DELETE", "Signed out there."));
}
document
  .getElementById("signout-others")
  ?.addEventListener("click", (event) =>
    signOutElsewhere(event.currentTarget, "POST", "Signed out everywhere else."),
  );

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  setBusy(button, true);
  const body = {
    display_name: form.elements.display_name.value.trim(),
    email: form.elements.email.value.trim(),
  };
  try {
    const me = await withReauth(
      () => requestJSON("PATCH", form.dataset.url, body, csrfToken),
      reauthUrls,
      csrfToken,
    );
    await signalDetails(me.display_name);
    say("Your details are saved.", "success");
  } catch (error) {
    say(describe(error), "error");
  } finally {
    setBusy(button, false);
  }
});
