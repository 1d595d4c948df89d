// A dapp on its own origin asking Passkey Portal for a session key, then using it.
// The session's private key is made here and never leaves this page (kept in sessionStorage for
// the demo); the portal gets only its address and a proof.
const { ethers } = window;
const PORTAL = new URLSearchParams(location.search).get("portal") || "http://localhost:8000";
const CHAIN_ID = Number(new URLSearchParams(location.search).get("chain") || 31337);
const USAGE = "tuple(uint8,uint256,uint48)";
const CONSTRAINT = `tuple(uint8,uint64,bytes32,${USAGE})`;
const CALL = `tuple(address,bytes4,uint256,${USAGE},${CONSTRAINT}[])`;
const TRANSFER = `tuple(address,uint256,${USAGE})`;
const SPEC = `tuple(address,uint48,${USAGE},${CALL}[],${TRANSFER}[])`;
const $ = (id) => document.getElementById(id);

function say(id, text, kind = "info") {
  $(id).textContent = text;
  $(id).dataset.kind = kind;
}

function saved() {
  const raw = sessionStorage.getItem("demo-session");
  return raw ? JSON.parse(raw) : null;
}

// --- asking for a session: a popup on the portal, postMessage with exact origins ---------------

function requestSession(wallet, request) {
  return new Promise((resolve, reject) => {
    const url = `${PORTAL}/connect?origin=${encodeURIComponent(location.origin)}`;
    const popup = window.open(url, "passkey-portal", "popup,width=520,height=760");
    if (!popup) return reject({ code: 4900, message: "The popup was blocked." });
    let sent = false;
    const closed = setInterval(() => {
      if (popup.closed) finish(null, { code: 4001, message: "The portal window was closed." });
    }, 500);
    function finish(result, error) {
      clearInterval(closed);
      window.removeEventListener("message", onMessage);
      if (error) reject(error);
      else resolve(result);
    }
    function onMessage(event) {
      if (event.origin !== PORTAL || event.source !== popup) return; // only the portal's popup
      const message = event.data;
      if (message?.type === "portal:ready" && !sent) {
        sent = true;
        popup.postMessage({ type: "portal:request", id: "session-1", ...request }, PORTAL);
      } else if (message?.type === "portal:request" && message.method === "portal_signSessionProof") {
        // Prove we hold the key: a raw signature of the digest the portal names.
        const proof = wallet.signingKey.sign(message.params.digest).serialized;
        popup.postMessage({ type: "portal:response", id: message.id, result: { proof } }, PORTAL);
      } else if (message?.type === "portal:event") {
        say("connect-result", `Portal: ${message.data.status}`);
      } else if (message?.type === "portal:response" && message.id === "session-1") {
        finish(message.result, message.error);
      }
    }
    window.addEventListener("message", onMessage);
  });
}

async function connect() {
  const wallet = ethers.Wallet.createRandom();
  const expiry = Math.floor(Date.now() / 1000) + Number($("minutes").value) * 60;
  const request = {
    method: "wallet_requestExecutionPermissions",
    params: [
      {
        chainId: ethers.toQuantity(CHAIN_ID),
        to: wallet.address,
        permission: {
          type: "native-token-allowance",
          isAdjustmentAllowed: false,
          data: {
            to: $("recipient").value,
            allowance: ethers.toQuantity(BigInt($("allowance").value)),
            maxPerTransfer: ethers.toQuantity(BigInt($("per-transfer").value)),
          },
        },
        rules: [{ type: "expiry", data: { timestamp: expiry } }],
      },
    ],
  };
  say("connect-result", "Waiting for the portal…");
  try {
    const response = await requestSession(wallet, request);
    const granted = response[0];
    sessionStorage.setItem(
      "demo-session",
      JSON.stringify({ privateKey: wallet.privateKey, account: granted.from, context: granted.context }),
    );
    $("session-response").textContent = JSON.stringify(response, null, 2);
    $("session-response").hidden = false;
    say("connect-result", `Session granted by ${granted.from}`, "success");
    $("send-button").disabled = false;
  } catch (error) {
    say("connect-result", `Refused (${error.code}): ${error.message}`, "error");
    $("connect-result").dataset.code = String(error.code);
  }
}

// --- using it: prepare (the portal sponsors), sign, send, follow --------------------------------

async function relay(method, path, body) {
  const response = await fetch(`${PORTAL}/api/v1/sessions/operations${path}`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json();
  if (!response.ok) throw answer;
  return answer;
}

async function send() {
  const session = saved();
  if (!session) return;
  const wallet = new ethers.Wallet(session.privateKey);
  $("send-button").disabled = true;
  $("transfer-result").dataset.code = "";
  say("transfer-result", "Preparing…");
  try {
    const prepared = await relay("POST", "/prepare", {
      account: session.account,
      context: session.context,
      call: { to: $("recipient").value, value: ethers.toQuantity(BigInt($("amount").value)) },
    });
    const signature = wallet.signingKey.sign(prepared.userOpHash).serialized;
    const coder = ethers.AbiCoder.defaultAbiCoder();
    const [spec] = coder.decode([SPEC], session.context);
    const payload = coder.encode(["bytes", SPEC, "uint48[]"], [signature, spec, prepared.periodIds]);
    const userOperation = {
      ...prepared.userOperation,
      signature: ethers.concat([prepared.validator, payload]),
    };
    let status = await relay("POST", "", { userOperation });
    say("transfer-result", `Sent: ${status.status}`);
    while (!["confirmed", "failed"].includes(status.status)) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      status = await relay("GET", `/${status.userOpHash}`);
      say("transfer-result", `Sent: ${status.status}`);
    }
    say(
      "transfer-result",
      status.success ? `Transfer confirmed in block ${status.blockNumber}` : `Failed: ${status.revertReason}`,
      status.success ? "success" : "error",
    );
    $("transfer-result").dataset.code = status.success ? "confirmed" : "failed";
  } catch (error) {
    say("transfer-result", `Refused: ${error.code} — ${error.detail}`, "error");
    $("transfer-result").dataset.code = error.code || "error";
  } finally {
    $("send-button").disabled = false;
  }
}

$("portal-origin").textContent = PORTAL;
$("connect-button").addEventListener("click", connect);
$("send-button").addEventListener("click", send);
if (saved()) {
  $("send-button").disabled = false;
  say("connect-result", `Session of ${saved().account} (from earlier)`, "success");
}
