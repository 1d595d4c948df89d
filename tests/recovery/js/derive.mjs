// Reads {codes, typed_data} on stdin; prints, per code, the address static/js/recovery-code.js
// derives and its signature of typed_data.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
globalThis.ethers = require("ethers");
const { keyFromCode, newCode, signTypedData } = await import("../../../static/js/recovery-code.js");

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { codes, typed_data: typedData } = JSON.parse(input);
const results = [];
for (const code of codes) {
  const wallet = keyFromCode(code);
  results.push({ address: wallet.address, signature: await signTypedData(wallet, typedData) });
}
process.stdout.write(JSON.stringify({ results, fresh: newCode() }));
