// Passkey Portal's EIP-1193 provider: what a dapp (on its own origin) talks to. Requests that need
// the person (connect, sign, send, session keys) go to the portal's /connect page in a popup, over
// postMessage with the portal's exact origin both ways (protocol version 2, see
// static/js/connect.js); the others are answered without a popup: read-only chain methods by the
// chain's JSON-RPC URL, call bundles' status and the wallet's capabilities by the portal's public
// API. Errors are EIP-1193 ProviderRpcErrors (4001 rejected, 4100 unauthorized, 4200 unsupported,
// 4900 disconnected, -32602 invalid params).

export const PROTOCOL_VERSION = 2;

export const USER_REJECTED = 4001;
export const UNAUTHORIZED = 4100;
export const UNSUPPORTED_METHOD = 4200;
export const DISCONNECTED = 4900;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;
const UNKNOWN_BUNDLE = 5730; // EIP-5792

// Answered by the person in the popup.
const POPUP_METHODS = new Set([
  "eth_requestAccounts",
  "personal_sign",
  "eth_signTypedData_v4",
  "eth_sendTransaction",
  "wallet_sendCalls",
  "wallet_requestExecutionPermissions",
  "wallet_revokeExecutionPermission",
]);
// Need a connected account first (the session-key flow signs the person in by itself).
const CONNECTED_METHODS = new Set([
  "personal_sign",
  "eth_signTypedData_v4",
  "eth_sendTransaction",
  "wallet_sendCalls",
  "wallet_revokeExecutionPermission",
]);
// Forwarded to the chain's JSON-RPC as they are.
const READ_ONLY_METHODS = new Set([
  "eth_blockNumber",
  "eth_call",
  "eth_estimateGas",
  "eth_feeHistory",
  "eth_gasPrice",
  "eth_getBalance",
  "eth_getBlockByHash",
  "eth_getBlockByNumber",
  "eth_getCode",
  "eth_getLogs",
  "eth_getProof",
  "eth_getStorageAt",
  "eth_getTransactionByHash",
  "eth_getTransactionCount",
  "eth_getTransactionReceipt",
  "eth_maxPriorityFeePerGas",
  "net_version",
  "web3_clientVersion",
]);

export class ProviderRpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.name = "ProviderRpcError";
    this.code = code;
    if (data !== undefined) this.data = data;
  }
}

function toHexChainId(chainId) {
  if (chainId === undefined || chainId === null) return null;
  return `0x${BigInt(chainId).toString(16)}`;
}

function sameAddress(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

/**
 * createPortalProvider({portalUrl, chainId?, rpcUrl?, signSessionProof?, timeout?, readyTimeout?})
 * - portalUrl: the portal, e.g. "https://portal.example" (its origin is the only one trusted).
 * - chainId: the chain the dapp expects (number or hex); otherwise the one the portal announces.
 * - rpcUrl: the chain's JSON-RPC URL for read-only methods; without it, the public one the portal
 *   announces when its window opens (CHAIN_PUBLIC_RPC_URL), if any.
 * - signSessionProof({digest, sessionHash, account, context, chainId}): the session key's raw
 *   signature of `digest` (0x hex), for wallet_requestExecutionPermissions.
 * - timeout: how long the person has to answer one request (ms, default 10 minutes);
 *   readyTimeout: how long the popup has to load (ms, default 30 s).
 */
export function createPortalProvider(options) {
  const portalOrigin = new URL(options.portalUrl).origin;
  const storageKey = `passkey-portal:${portalOrigin}`;
  const timeout = options.timeout ?? 600000;
  const readyTimeout = options.readyTimeout ?? 30000;
  const listeners = new Map();
  const pending = new Map(); // our requests to the popup, by id
  let popup = null;
  let ready = null; // a promise of the popup's portal:ready message
  let announcedRpcUrl = ""; // the public RPC URL the portal names in portal:ready
  let readyWaiter = null;
  let closedWatch = null;
  let chainId = toHexChainId(options.chainId);
  let accounts = [];
  try {
    const saved = JSON.parse(window.localStorage.getItem(storageKey) || "null");
    if (saved && Array.isArray(saved.accounts)) {
      accounts = saved.accounts;
      chainId = chainId || saved.chainId || null;
    }
  } catch {
    // No storage (or garbage in it): start disconnected.
  }

  function emit(event, payload) {
    for (const listener of [...(listeners.get(event) || [])]) {
      try {
        listener(payload);
      } catch (error) {
        console.error(error);
      }
    }
  }

  function remember(next) {
    const changed = next.length !== accounts.length || next.some((a, i) => !sameAddress(a, accounts[i]));
    const wasConnected = accounts.length > 0;
    accounts = next;
    try {
      if (next.length) window.localStorage.setItem(storageKey, JSON.stringify({ accounts, chainId }));
      else window.localStorage.removeItem(storageKey);
    } catch {
      // Storage is only a convenience across reloads.
    }
    if (!wasConnected && next.length) emit("connect", { chainId });
    if (changed) emit("accountsChanged", [...next]);
  }

  function stopWatching() {
    clearInterval(closedWatch);
    closedWatch = null;
  }

  function popupGone(error) {
    stopWatching();
    popup = null;
    ready = null;
    if (readyWaiter) {
      readyWaiter.reject(error);
      readyWaiter = null;
    }
    for (const [id, waiting] of pending) {
      clearTimeout(waiting.timer);
      pending.delete(id);
      waiting.reject(error);
    }
  }

  function watchClosed() {
    if (closedWatch) return;
    closedWatch = setInterval(() => {
      if (popup && !popup.closed) return;
      popupGone(new ProviderRpcError(USER_REJECTED, "The portal window was closed."));
    }, 300);
  }

  function openPopup() {
    if (popup && !popup.closed && ready) {
      popup.focus();
      return ready;
    }
    const url = `${portalOrigin}/connect?origin=${encodeURIComponent(window.location.origin)}`;
    const opened = window.open(url, "passkey-portal", "popup,width=520,height=760");
    if (!opened) {
      return Promise.reject(
        new ProviderRpcError(DISCONNECTED, "The portal's window was blocked: allow popups for this site."),
      );
    }
    popup = opened;
    ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        readyWaiter = null;
        ready = null;
        reject(new ProviderRpcError(DISCONNECTED, "The portal's window did not answer."));
      }, readyTimeout);
      readyWaiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
    ready.catch(() => {});
    watchClosed();
    return ready;
  }

  function answerPortal(id, result, error) {
    popup?.postMessage({ type: "portal:response", id, ...(error ? { error } : { result }) }, portalOrigin);
  }

  async function onPortalRequest(message) {
    // The portal asks the dapp for something only the dapp has (the session key's proof).
    if (message.method !== "portal_signSessionProof" || typeof options.signSessionProof !== "function") {
      answerPortal(message.id, undefined, { code: UNSUPPORTED_METHOD, message: "Not supported by this dapp." });
      return;
    }
    try {
      const proof = await options.signSessionProof(message.params);
      answerPortal(message.id, { proof });
    } catch (error) {
      answerPortal(message.id, undefined, { code: USER_REJECTED, message: String(error?.message || error) });
    }
  }

  function onMessage(event) {
    if (event.origin !== portalOrigin || !popup || event.source !== popup) return;
    const message = event.data;
    if (!message || typeof message !== "object" || typeof message.type !== "string") return;
    if (message.type === "portal:ready") {
      if (message.chainId && !options.chainId) chainId = message.chainId;
      if (typeof message.rpcUrl === "string" && message.rpcUrl) announcedRpcUrl = message.rpcUrl;
      readyWaiter?.resolve(message);
      readyWaiter = null;
    } else if (message.type === "portal:response") {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.error) {
        const { code, message: text, data } = message.error;
        waiting.reject(new ProviderRpcError(Number(code) || INTERNAL_ERROR, text || "Refused by the portal.", data));
      } else {
        waiting.resolve(message.result);
      }
    } else if (message.type === "portal:request") {
      onPortalRequest(message);
    } else if (message.type === "portal:event") {
      emit("message", { type: `portal_${message.event}`, data: message.data });
    }
  }
  window.addEventListener("message", onMessage);

  async function viaPopup(method, params) {
    const announced = await openPopup();
    if (announced.version !== PROTOCOL_VERSION) {
      throw new ProviderRpcError(DISCONNECTED, `The portal speaks protocol ${announced.version}, not ${PROTOCOL_VERSION}.`);
    }
    const id = crypto.randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new ProviderRpcError(DISCONNECTED, "The portal did not answer in time."));
      }, timeout);
      pending.set(id, { resolve, reject, timer });
      popup.postMessage({ type: "portal:request", id, method, params }, portalOrigin);
    });
  }

  async function portalGet(path) {
    let response;
    try {
      response = await fetch(`${portalOrigin}/api/v1/${path}`, { credentials: "omit" });
    } catch (error) {
      throw new ProviderRpcError(DISCONNECTED, `The portal could not be reached: ${error.message}`);
    }
    const body = await response.json().catch(() => null);
    return { status: response.status, body };
  }

  async function forward(method, params) {
    const rpcUrl = options.rpcUrl || announcedRpcUrl;
    if (!rpcUrl) throw new ProviderRpcError(DISCONNECTED, "No chain RPC URL was given or announced by the portal.");
    let response;
    try {
      response = await fetch(rpcUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params ?? [] }),
      });
    } catch (error) {
      throw new ProviderRpcError(DISCONNECTED, `The chain could not be reached: ${error.message}`);
    }
    const body = await response.json().catch(() => null);
    if (!body) throw new ProviderRpcError(DISCONNECTED, `The chain answered HTTP ${response.status}.`);
    if (body.error) throw new ProviderRpcError(body.error.code, body.error.message, body.error.data);
    return body.result;
  }

  function checkSigner(method, params) {
    const address = {
      personal_sign: params?.[1],
      eth_signTypedData_v4: params?.[0],
      eth_sendTransaction: params?.[0]?.from,
      wallet_sendCalls: params?.[0]?.from,
    }[method];
    if (address !== undefined && !accounts.some((account) => sameAddress(account, address))) {
      throw new ProviderRpcError(UNAUTHORIZED, `${address} is not the connected account.`);
    }
  }

  async function request(args) {
    if (!args || typeof args !== "object" || typeof args.method !== "string") {
      throw new ProviderRpcError(INVALID_PARAMS, "request() takes {method, params}.");
    }
    const { method } = args;
    const params = args.params;
    if (params !== undefined && typeof params !== "object") {
      throw new ProviderRpcError(INVALID_PARAMS, "params must be an array or an object.");
    }
    switch (method) {
      case "eth_accounts":
        return [...accounts];
      case "eth_chainId":
        if (chainId) return chainId;
        chainId = await forward("eth_chainId", []);
        return chainId;
      case "eth_requestAccounts": {
        if (accounts.length) return [...accounts];
        const result = await viaPopup(method, params ?? []);
        if (!Array.isArray(result) || !result.length) {
          throw new ProviderRpcError(INTERNAL_ERROR, "The portal sent no account.");
        }
        remember(result);
        return [...accounts];
      }
      case "wallet_disconnect": {
        remember([]);
        // The portal forgets the connection too when its window can be reached; if the popup is
        // blocked the dapp is disconnected anyway (the person can also disconnect on /account).
        try {
          await viaPopup(method, []);
        } catch {
          // Nothing more to do: the dapp side is disconnected.
        }
        return null;
      }
      case "wallet_getCallsStatus": {
        const id = params?.[0];
        if (typeof id !== "string" || !/^0x[0-9a-fA-F]{1,128}$/.test(id)) {
          throw new ProviderRpcError(INVALID_PARAMS, "wallet_getCallsStatus takes [bundle id].");
        }
        const { status, body } = await portalGet(`dapps/calls/${id}`);
        if (status === 404) throw new ProviderRpcError(UNKNOWN_BUNDLE, "Unknown bundle id.");
        if (status !== 200) throw new ProviderRpcError(INTERNAL_ERROR, body?.detail || `HTTP ${status}`);
        const { operation: _operation, ...callsStatus } = body;
        return callsStatus;
      }
      case "wallet_getCapabilities": {
        const { status, body } = await portalGet("dapps/capabilities");
        if (status !== 200) throw new ProviderRpcError(INTERNAL_ERROR, body?.detail || `HTTP ${status}`);
        const wanted = params?.[1];
        if (!Array.isArray(wanted)) return body;
        return Object.fromEntries(
          Object.entries(body).filter(([id]) => wanted.some((w) => toHexChainId(w) === toHexChainId(id))),
        );
      }
      default:
        break;
    }
    if (READ_ONLY_METHODS.has(method)) return forward(method, params);
    if (!POPUP_METHODS.has(method)) {
      throw new ProviderRpcError(UNSUPPORTED_METHOD, `Passkey Portal does not support ${method}.`);
    }
    if (CONNECTED_METHODS.has(method)) {
      if (!accounts.length) throw new ProviderRpcError(UNAUTHORIZED, "Connect first (eth_requestAccounts).");
      checkSigner(method, params);
    }
    try {
      return await viaPopup(method, params ?? []);
    } catch (error) {
      // The portal no longer knows this dapp (disconnected on /account): so does the dapp.
      if (error?.code === UNAUTHORIZED && error?.data?.code === "not_connected") remember([]);
      throw error;
    }
  }

  return {
    isPasskeyPortal: true,
    request,
    on(event, listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(listener);
      return this;
    },
    removeListener(event, listener) {
      listeners.get(event)?.delete(listener);
      return this;
    },
  };
}
