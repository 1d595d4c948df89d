// The recovery code and its key, computed only in this browser (the portal never sees the code).
//
// Code: 32 characters of Crockford's base32 (160 random bits from crypto.getRandomValues), shown
// as eight groups of four. Typed back, it is upper-cased, spaces and hyphens dropped, I and L
// read as 1 and O as 0.
// Key: d = (HMAC-SHA256(key = "passkey-portal/recovery-code/v1", message = the ASCII code)
//           mod (n − 1)) + 1, n the order of secp256k1. Its address guards the account.
// Needs ethers (static/vendor/ethers.umd.min.js) as globalThis.ethers.

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DOMAIN = "passkey-portal/recovery-code/v1";
const LENGTH = 32;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

export class CodeError extends Error {}

export function newCode() {
  const bytes = new Uint8Array(20); // 160 bits: 32 characters of 5 bits
  globalThis.crypto.getRandomValues(bytes);
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let chars = "";
  for (let i = LENGTH - 1; i >= 0; i -= 1) chars += ALPHABET[Number((value >> BigInt(5 * i)) & 31n)];
  return chars.match(/.{4}/g).join("-");
}

export function normalizeCode(typed) {
  const text = typed.toUpperCase().replace(/[\s-]/g, "").replace(/[IL]/g, "1").replace(/O/g, "0");
  if (text.length !== LENGTH || [...text].some((ch) => !ALPHABET.includes(ch))) {
    throw new CodeError(
      "A recovery code has 32 letters and digits in eight groups of four: check what you typed.",
    );
  }
  return text;
}

export function keyFromCode(typed) {
  const { ethers } = globalThis;
  const code = normalizeCode(typed);
  const digest = ethers.computeHmac("sha256", ethers.toUtf8Bytes(DOMAIN), ethers.toUtf8Bytes(code));
  const secret = (BigInt(digest) % (SECP256K1_N - 1n)) + 1n;
  return new ethers.Wallet(ethers.toBeHex(secret, 32));
}

// typedData: the portal's { domain, types, primaryType, message }.
export function signTypedData(wallet, typedData) {
  return wallet.signTypedData(typedData.domain, typedData.types, typedData.message);
}
