// Verifies signatures with viem (an ERC-1271 / ERC-6492 verifier nobody here wrote).
// stdin: {"rpc_url", "chain_id", "checks": [check, ...]}; stdout: [true | false, ...].
// A check is {"address", "signature"} and one of:
//   {"kind": "message", "message": "text"} or {"kind": "message", "raw": "0x..."}   verifyMessage
//   {"kind": "typed_data", "typed_data": {types, primaryType, domain, message}}      verifyTypedData
//   {"kind": "siwe", "message": "EIP-4361 text", "domain", "nonce"}                 verifySiweMessage
//   {"kind": "hash", "hash": "0x..."}                                               verifyHash
import { createPublicClient, defineChain, http } from "viem";

const input = JSON.parse(await new Promise((resolve, reject) => {
  let data = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => { data += chunk; });
  process.stdin.on("end", () => resolve(data));
  process.stdin.on("error", reject);
}));

const chain = defineChain({
  id: input.chain_id,
  name: "test chain",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [input.rpc_url] } },
});
const client = createPublicClient({ chain, transport: http(input.rpc_url) });

const results = [];
for (const check of input.checks) {
  const { address, signature } = check;
  if (check.kind === "message") {
    const message = check.raw !== undefined ? { raw: check.raw } : check.message;
    results.push(await client.verifyMessage({ address, message, signature }));
  } else if (check.kind === "typed_data") {
    const { types, primaryType, domain, message } = check.typed_data;
    results.push(await client.verifyTypedData({ address, types, primaryType, domain, message, signature }));
  } else if (check.kind === "siwe") {
    results.push(await client.verifySiweMessage({
      message: check.message, signature, domain: check.domain, nonce: check.nonce, address,
    }));
  } else if (check.kind === "hash") {
    results.push(await client.verifyHash({ address, hash: check.hash, signature }));
  } else {
    throw new Error(`unknown check kind ${check.kind}`);
  }
}
process.stdout.write(JSON.stringify(results));
