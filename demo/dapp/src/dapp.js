// The demo dapp: a page on its own origin that uses Passkey Portal through its wagmi connector and
// viem, as any dapp would: connect, sign (a Sign-In with Ethereum message, typed data) and verify
// with viem (ERC-6492 before the account is deployed, ERC-1271 after), send a transaction and a
// two-call batch (EIP-5792), ask for a session key (ERC-7715) and use it through the portal's relay,
// disconnect. Bundled by esbuild at `make setup` (demo/dapp/vendor/dapp.js).
import { connect, createConfig, disconnect, getWalletClient, http, reconnect } from "@wagmi/core";
import { ethers } from "ethers";
import { createPublicClient, defineChain } from "viem";
import { createSiweMessage, generateSiweNonce } from "viem/siwe";

import { passkeyPortal } from "../../../connector/src/wagmi.js";

const query = new URLSearchParams(location.search);
const PORTAL = query.get("portal") || "http://localhost:8000";
const RPC = query.get("rpc") || "http://127.0.0.1:8545";
const CHAIN_ID = Number(query.get("chain") || 31337);
const USAGE = "tuple(uint8,uint256,uint48)";
const CONSTRAINT = `tuple(uint8,uint64,bytes32,${USAGE})`;
const CALL = `tuple(address,bytes4,uint256,${USAGE},${CONSTRAINT}[])`;
const TRANSFER = `tuple(address,uint256,${USAGE})`;
const SPEC = `tuple(address,uint48,${USAGE},${CALL}[],${TRANSFER}[])`;
const $ = (id) => document.getElementById(id);

const chain = defineChain({
  id: CHAIN_ID,
  name: "Portal chain",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [RPC] } },
});
const publicClient = createPublicClient({ chain, transport: http(RPC) });
let sessionWallet = null; // the session key being granted; its proof is asked for by the portal
const connector = passkeyPortal({
  portalUrl: PORTAL,
  signSessionProof: async ({ digest }) => sessionWallet.signingKey.sign(digest).serialized,
});
const config = createConfig({
  chains: [chain],
  connectors: [connector],
  transports: { [chain.id]: http(RPC) },
});
const portalConnector = config.connectors[0];

function say(id, text, kind = "info", code = "") {
  $(id).textContent = text;
  $(id).dataset.kind = kind;
  $(id).dataset.code = code;
}

// The EIP-1193 code of whatever viem or the provider threw (viem wraps it in its own errors).
function codeOf(error) {
  for (let e = error; e; e = e.cause) if (typeof e.code === "number") return e.code;
  return "error";
}

function refused(id, error) {
  const code = codeOf(error);
  say(id, `Refused (${code}): ${error.shortMessage || error.message}`, "error", String(code));
}

async function wallet() {
  return getWalletClient(config);
}

function connected(address) {
  $("account").textContent = address || "not connected";
  for (const button of document.querySelectorAll("[data-needs-account]")) button.disabled = !address;
  $("connect-button").disabled = Boolean(address);
}

// --- connect, disconnect ---------------------------------------------------------------------

async function onConnect() {
  say("connect-result", "Waiting for the portal…");
  try {
    const { accounts } = await connect(config, { connector: portalConnector });
    connected(accounts[0]);
    say("connect-result", `Connected: ${accounts[0]}`, "success", "connected");
  } catch (error) {
    refused("connect-result", error);
  }
}

async function onDisconnect() {
  await disconnect(config);
  connected(null);
  say("connect-result", "Disconnected", "info", "disconnected");
}

// --- messages, verified by viem (ERC-6492 / ERC-1271 through eth_call) ------------------------

async function deployed(address) {
  const code = await publicClient.getCode({ address });
  return Boolean(code && code !== "0x");
}

async function onSignIn() {
  say("sign-result", "Waiting for the portal…");
  try {
    const client = await wallet();
    const address = client.account.address;
    const message = createSiweMessage({
      address,
      chainId: CHAIN_ID,
      domain: location.host,
      nonce: generateSiweNonce(),
      uri: location.origin,
      version: "1",
      statement: $("statement").value,
    });
    const signature = await client.signMessage({ message });
    $("signature").textContent = signature;
    const how = (await deployed(address)) ? "ERC-1271" : "ERC-6492";
    const valid = await publicClient.verifySiweMessage({ message, signature, domain: location.host });
    say(
      "sign-result",
      valid ? `Signature valid (${how})` : `Signature NOT valid (${how})`,
      valid ? "success" : "error",
      valid ? `valid-${how}` : "invalid",
    );
  } catch (error) {
    refused("sign-result", error);
  }
}

async function onSignTyped() {
  say("typed-result", "Waiting for the portal…");
  try {
    const client = await wallet();
    const typedData = {
      domain: { name: "Demo dapp", version: "1", chainId: CHAIN_ID },
      types: { Greeting: [{ name: "text", type: "string" }, { name: "from", type: "address" }] },
      primaryType: "Greeting",
      message: { text: $("greeting").value, from: client.account.address },
    };
    const signature = await client.signTypedData(typedData);
    const how = (await deployed(client.account.address)) ? "ERC-1271" : "ERC-6492";
    const valid = await publicClient.verifyTypedData({ address: client.account.address, signature, ...typedData });
    say(
      "typed-result",
      valid ? `Typed data signature valid (${how})` : `NOT valid (${how})`,
      valid ? "success" : "error",
      valid ? `valid-${how}` : "invalid",
    );
  } catch (error) {
    refused("typed-result", error);
  }
}

// --- a transaction and a batch of calls, approved with the passkey in the portal --------------

async function onSendTransaction() {
  say("tx-result", "Waiting for the portal…");
  try {
    const client = await wallet();
    const hash = await client.sendTransaction({ to: $("tx-to").value, value: BigInt($("tx-value").value) });
    say("tx-result", `Sent: ${hash}`);
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120000 });
    say(
      "tx-result",
      `Transaction ${hash} ${receipt.status} in block ${receipt.blockNumber}`,
      receipt.status === "success" ? "success" : "error",
      receipt.status === "success" ? "confirmed" : "reverted",
    );
  } catch (error) {
    refused("tx-result", error);
  }
}

async function onSendBatch() {
  say("batch-result", "Waiting for the portal…");
  try {
    const client = await wallet();
    const calls = [
      { to: $("batch-to-1").value, value: BigInt($("batch-value-1").value) },
      { to: $("batch-to-2").value, value: BigInt($("batch-value-2").value) },
    ];
    const { id } = await client.sendCalls({ calls });
    say("batch-result", `Bundle ${id} sent`);
    const result = await client.waitForCallsStatus({ id, timeout: 120000 });
    $("batch-status").textContent = JSON.stringify(result, (_, v) => (typeof v === "bigint" ? v.toString() : v), 2);
    say(
      "batch-result",
      `Bundle ${id}: ${result.status}`,
      result.status === "success" ? "success" : "error",
      result.status,
    );
  } catch (error) {
    refused("batch-result", error);
  }
}

// --- a session key: asked for through the provider, used through the portal's relay ------------

function saved() {
  const raw = sessionStorage.getItem("demo-session");
  return raw ? JSON.parse(raw) : null;
}

async function onAskSession() {
  sessionWallet = ethers.Wallet.createRandom();
  const expiry = Math.floor(Date.now() / 1000) + Number($("minutes").value) * 60;
  const provider = await portalConnector.getProvider();
  say("session-result", "Waiting for the portal…");
  provider.on("message", function progress(message) {
    if (message.type === "portal_progress") say("session-result", `Portal: ${message.data.status}`);
  });
  try {
    const response = await provider.request({
      method: "wallet_requestExecutionPermissions",
      params: [
        {
          chainId: ethers.toQuantity(CHAIN_ID),
          to: sessionWallet.address,
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
    });
    const granted = response[0];
    sessionStorage.setItem(
      "demo-session",
      JSON.stringify({ privateKey: sessionWallet.privateKey, account: granted.from, context: granted.context }),
    );
    $("session-response").textContent = JSON.stringify(response, null, 2);
    $("session-response").hidden = false;
    say("session-result", `Session granted by ${granted.from}`, "success", "granted");
    $("send-button").disabled = false;
    $("revoke-button").disabled = false;
  } catch (error) {
    refused("session-result", error);
  }
}

async function onRevokeSession() {
  const session = saved();
  if (!session) return;
  say("session-result", "Waiting for the portal…");
  try {
    const provider = await portalConnector.getProvider();
    await provider.request({
      method: "wallet_revokeExecutionPermission",
      params: [{ permissionContext: session.context }],
    });
    say("session-result", "Session revoked", "success", "revoked");
  } catch (error) {
    refused("session-result", error);
  }
}

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

async function onSendWithSession() {
  const session = saved();
  if (!session) return;
  const key = new ethers.Wallet(session.privateKey);
  $("send-button").disabled = true;
  $("transfer-result").dataset.code = "";
  say("transfer-result", "Preparing…");
  try {
    const prepared = await relay("POST", "/prepare", {
      account: session.account,
      context: session.context,
      call: { to: $("recipient").value, value: ethers.toQuantity(BigInt($("amount").value)) },
    });
    const signature = key.signingKey.sign(prepared.userOpHash).serialized;
    const coder = ethers.AbiCoder.defaultAbiCoder();
    const [spec] = coder.decode([SPEC], session.context);
    const payload = coder.encode(["bytes", SPEC, "uint48[]"], [signature, spec, prepared.periodIds]);
    const userOperation = { ...prepared.userOperation, signature: ethers.concat([prepared.validator, payload]) };
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
      status.success ? "confirmed" : "failed",
    );
  } catch (error) {
    say("transfer-result", `Refused: ${error.code} — ${error.detail}`, "error", error.code || "error");
  } finally {
    $("send-button").disabled = false;
  }
}

$("portal-origin").textContent = PORTAL;
$("connect-button").addEventListener("click", onConnect);
$("disconnect-button").addEventListener("click", onDisconnect);
$("sign-button").addEventListener("click", onSignIn);
$("typed-button").addEventListener("click", onSignTyped);
$("tx-button").addEventListener("click", onSendTransaction);
$("batch-button").addEventListener("click", onSendBatch);
$("session-button").addEventListener("click", onAskSession);
$("revoke-button").addEventListener("click", onRevokeSession);
$("send-button").addEventListener("click", onSendWithSession);
// For the browser tests and the curious: the provider itself (window.portalProvider.request(...)).
portalConnector.getProvider().then((provider) => {
  window.portalProvider = provider;
});
reconnect(config).then((connections) => connected(connections[0]?.accounts[0]));
if (saved()) {
  $("send-button").disabled = false;
  $("revoke-button").disabled = false;
  say("session-result", `Session of ${saved().account} (from earlier)`, "success");
}
