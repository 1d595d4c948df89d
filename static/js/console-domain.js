// /console/domains/<name>: approve the baseline and pre-approve a change (both in sudo mode), and
// count down to the registration's expiry.
import { describe, requestJSON, say, setBusy, withReauth } from "./ceremony.js";

const section = document.getElementById("baseline");
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const reauthUrls = {
  optionsUrl: section.dataset.reauthOptionsUrl,
  verifyUrl: section.dataset.reauthVerifyUrl,
};
const send = (url, body) =>
  withReauth(() => requestJSON("POST", url, body, csrfToken), reauthUrls, csrfToken);

const approveButton = document.getElementById("approve-button");
approveButton.addEventListener("click", async () => {
  setBusy(approveButton, true);
  try {
    const answer = await send(section.dataset.baselineUrl, {});
    sessionStorage.setItem("console-message", `Baseline approved: ${answer.approved.join(", ")}.`);
    window.location.reload();
  } catch (error) {
    setBusy(approveButton, false);
    say(describe(error), "error");
  }
});

const expectForm = document.getElementById("expect-form");
expectForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  let value;
  try {
    value = JSON.parse(expectForm.elements.value.value);
  } catch {
    say("The value must be JSON, e.g. [\"192.0.2.10\"].", "error");
    return;
  }
  const body = {
    signal: expectForm.elements.signal.value,
    kind: expectForm.elements.kind.value,
    value,
    note: expectForm.elements.note.value,
  };
  try {
    await send(section.dataset.expectUrl, body);
    say(`Expected: ${body.kind} on ${body.signal}. It will become the baseline when seen.`, "success");
    expectForm.reset();
  } catch (error) {
    say(describe(error), "error");
  }
});

const flashed = sessionStorage.getItem("console-message");
if (flashed) {
  sessionStorage.removeItem("console-message");
  say(flashed, "success");
}

const expiry = document.getElementById("expiry");
const countdown = document.getElementById("expiry-countdown");
if (expiry && countdown && expiry.dateTime) {
  const tick = () => {
    const left = Date.parse(expiry.dateTime) - Date.now();
    if (Number.isNaN(left)) return;
    const days = Math.floor(left / 86400000);
    const hours = Math.floor((left % 86400000) / 3600000);
    countdown.textContent = left <= 0 ? "expired" : `${days} days ${hours} h`;
    countdown.dataset.urgent = days < 30 ? "true" : "false";
  };
  tick();
  setInterval(tick, 60000);
}
