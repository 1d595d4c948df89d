// A wagmi connector (@wagmi/core createConnector) around Passkey Portal's EIP-1193 provider.
//   import { passkeyPortal } from "@passkey-portal/connector/wagmi";
//   createConfig({ chains: [mainnet], connectors: [passkeyPortal({ portalUrl })], transports })
import { createConnector } from "@wagmi/core";
import { getAddress } from "viem";

import { createPortalProvider } from "./provider.js";

export function passkeyPortal(parameters) {
  let provider = null;
  let onAccountsChanged = null;
  let onChainChanged = null;

  function stopListening(portal) {
    if (!onAccountsChanged) return;
    portal.removeListener("accountsChanged", onAccountsChanged);
    portal.removeListener("chainChanged", onChainChanged);
    onAccountsChanged = null;
    onChainChanged = null;
  }

  return createConnector((config) => ({
    id: "passkeyPortal",
    name: "Passkey Portal",
    type: "passkeyPortal",

    async connect({ isReconnecting } = {}) {
      const portal = await this.getProvider();
      let accounts = isReconnecting ? await this.getAccounts() : [];
      if (!accounts.length) {
        accounts = (await portal.request({ method: "eth_requestAccounts" })).map((a) => getAddress(a));
      }
      if (!onAccountsChanged) {
        onAccountsChanged = this.onAccountsChanged.bind(this);
        onChainChanged = this.onChainChanged.bind(this);
        portal.on("accountsChanged", onAccountsChanged);
        portal.on("chainChanged", onChainChanged);
      }
      return { accounts, chainId: await this.getChainId() };
    },

    async disconnect() {
      const portal = await this.getProvider();
      stopListening(portal);
      await portal.request({ method: "wallet_disconnect" });
    },

    async getAccounts() {
      const portal = await this.getProvider();
      return (await portal.request({ method: "eth_accounts" })).map((a) => getAddress(a));
    },

    async getChainId() {
      const portal = await this.getProvider();
      return Number(await portal.request({ method: "eth_chainId" }));
    },

    async getProvider() {
      if (!provider) {
        const chain = config.chains[0];
        provider = createPortalProvider({
          chainId: chain.id,
          rpcUrl: chain.rpcUrls.default.http[0],
          ...parameters,
        });
      }
      return provider;
    },

    async isAuthorized() {
      return (await this.getAccounts()).length > 0;
    },

    onAccountsChanged(accounts) {
      if (accounts.length === 0) this.onDisconnect();
      else config.emitter.emit("change", { accounts: accounts.map((a) => getAddress(a)) });
    },

    onChainChanged(chainId) {
      config.emitter.emit("change", { chainId: Number(chainId) });
    },

    async onDisconnect() {
      config.emitter.emit("disconnect");
      stopListening(await this.getProvider());
    },
  }));
}
