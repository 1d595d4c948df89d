// /account: after sign-in (and on every visit) tell the device which of its passkeys for this site
// the portal still accepts (WebAuthn Signal API, feature-detected).
import { signalAcceptedCredentials } from "./ceremony.js";

signalAcceptedCredentials(document.getElementById("passkey-list"));
