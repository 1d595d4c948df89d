// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {
    IModule,
    IValidator,
    IModularAccount,
    MODULE_TYPE_VALIDATOR,
    VALIDATION_SUCCESS,
    VALIDATION_FAILED,
    ERC1271_MAGIC,
    ERC1271_FAILED
} from "./interfaces/IERC7579Module.sol";

/// @title WebAuthnValidator
/// @notice ERC-7579 validator whose keys are passkeys (P-256), stored per (origin, credential id, account).
///
/// Signature payload, either form:
/// - ZKsync SSO's: abi.encode(bytes authenticatorData, string clientDataJSON, bytes32[2] rs, bytes credentialId);
/// - compact, for the clientDataJSON browsers produce,
///   {"type":"webauthn.get","challenge":"<base64url of the hash>","origin":"<origin>"[,"crossOrigin":false]}:
///   form (1 byte: 0x01 without crossOrigin, 0x02 with `,"crossOrigin":false`) ‖ r (32) ‖ s (32)
///   ‖ authenticatorData length (2, big-endian) ‖ authenticatorData ‖ credentialId length (2) ‖ credentialId
///   ‖ origin (the rest). The validator rebuilds exactly that clientDataJSON from the signed hash and the origin
///   (an origin with '"' or '\' is refused), so the same checks hold by construction, and the constant parts,
///   the challenge and the ABI padding stay out of calldata. (An ABI payload always starts with a zero byte.)
/// A signature is valid when:
/// - the payload decodes, and authenticatorData's flags have User Present and User Verified set;
/// - clientDataJSON is a JSON object whose `challenge` is the base64url (no padding) of the signed hash,
///   whose `type` is "webauthn.get", whose `origin` (unescaped) and the credential id name a key registered
///   for the account, and whose `crossOrigin`, if present, is the literal `false`;
/// - (r, s) is a low-s P-256 signature of sha256(authenticatorData ‖ sha256(clientDataJSON)) by that key,
///   checked by the P256VERIFY precompile at 0x100 or, on a chain without it, by OpenZeppelin's Solidity
///   verifier (P256.verify).
/// Anything else is an invalid signature: validation never reverts (validateUserOp returns
/// SIG_VALIDATION_FAILED, isValidSignatureWithSender 0xffffffff), so bundlers can estimate gas with a dummy
/// signature.
///
/// Keys belong to the installation: onUninstall must remove every key of the account (else it reverts
/// KeysRemaining), and onInstall refuses an account that still holds keys (left by unlinkModule) with
/// AlreadyInitialized, so a removed passkey never comes back with a reinstall.
contract WebAuthnValidator is IValidator, IERC165 {
    using EnumerableSet for EnumerableSet.AddressSet;

    struct PasskeyId {
        string domain;
        bytes credentialId;
    }

    bytes1 private constant FLAGS_UP_UV = 0x05;
    /// First byte of a compact signature payload (see the notes above).
    uint256 private constant COMPACT = 0x01;
    uint256 private constant COMPACT_CROSS_ORIGIN_FALSE = 0x02;
    /// n / 2 of P-256: a signature with a larger s is refused (its twin N - s verifies the same message).
    uint256 private constant P256_HALF_N = 0x7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8;
    uint256 private constant MIN_CREDENTIAL_ID_LENGTH = 16;
    uint256 private constant MAX_DOMAIN_LENGTH = 255;

    mapping(string domain => mapping(bytes credentialId => mapping(address account => bytes32[2] key))) private
        _publicKeys;
    mapping(string domain => mapping(bytes credentialId => EnumerableSet.AddressSet accounts)) private _accounts;
    mapping(address account => uint256 count) private _keyCount;

    event PasskeyCreated(address indexed keyOwner, string domain, bytes credentialId);
    event PasskeyRemoved(address indexed keyOwner, string domain, bytes credentialId);

    error BadCredentialIDLength();
    error BadDomainLength();
    error EmptyKey();
    error InvalidAuthDataFlags(bytes1 flags);
    error InvalidClientData(string field);
    error KeyAlreadyExists();
    error KeyNotFound(string domain, bytes credentialId, address account);
    error InvalidSignatureEncoding();
    error KeysRemaining(uint256 count);

    // ---------------------------------------------------------------- module

    /// @param data empty, or abi.encode(bytes credentialId, bytes32[2] publicKey, string domain)
    function onInstall(bytes calldata data) external {
        if (_keyCount[msg.sender] != 0) revert AlreadyInitialized(msg.sender);
        if (data.length == 0) return;
        (bytes memory credentialId, bytes32[2] memory publicKey, string memory domain) =
            abi.decode(data, (bytes, bytes32[2], string));
        _addKey(msg.sender, credentialId, publicKey, domain);
    }

    /// @param data abi.encode(PasskeyId[]) of the keys to remove: all the account's keys
    function onUninstall(bytes calldata data) external {
        PasskeyId[] memory ids = abi.decode(data, (PasskeyId[]));
        for (uint256 i = 0; i < ids.length; ++i) {
            _removeKey(msg.sender, ids[i].credentialId, ids[i].domain);
        }
        uint256 remaining = _keyCount[msg.sender];
        if (remaining != 0) revert KeysRemaining(remaining);
    }

    /// @notice How many keys `account` holds.
    function keyCount(address account) external view returns (uint256) {
        return _keyCount[account];
    }

    function isModuleType(uint256 moduleType) external pure returns (bool) {
        return moduleType == MODULE_TYPE_VALIDATOR;
    }

    function isInitialized(address account) public view returns (bool) {
        return IModularAccount(account).isModuleInstalled(MODULE_TYPE_VALIDATOR, address(this), "");
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC165).interfaceId || interfaceId == type(IValidator).interfaceId
            || interfaceId == type(IModule).interfaceId;
    }

    // ---------------------------------------------------------------- keys

    function addValidationKey(bytes calldata credentialId, bytes32[2] calldata newKey, string calldata domain)
        external
    {
        if (!isInitialized(msg.sender)) revert NotInitialized(msg.sender);
        _addKey(msg.sender, credentialId, newKey, domain);
    }

    function removeValidationKey(bytes calldata credentialId, string calldata domain) external {
        _removeKey(msg.sender, credentialId, domain);
    }

    function getAccountKey(string calldata domain, bytes calldata credentialId, address account)
        external
        view
        returns (bytes32[2] memory)
    {
        return _publicKeys[domain][credentialId][account];
    }

    function getAccountList(string calldata domain, bytes calldata credentialId)
        external
        view
        returns (address[] memory)
    {
        return _accounts[domain][credentialId].values();
    }

    function _addKey(address account, bytes memory credentialId, bytes32[2] memory newKey, string memory domain)
        private
    {
        bytes32[2] storage key = _publicKeys[domain][credentialId][account];
        if (key[0] != 0 || key[1] != 0) revert KeyAlreadyExists();
        if (newKey[0] == 0 && newKey[1] == 0) revert EmptyKey();
        uint256 domainLength = bytes(domain).length;
        if (domainLength == 0 || domainLength > MAX_DOMAIN_LENGTH) revert BadDomainLength();
        if (credentialId.length < MIN_CREDENTIAL_ID_LENGTH) revert BadCredentialIDLength();
        _accounts[domain][credentialId].add(account);
        ++_keyCount[account];
        key[0] = newKey[0];
        key[1] = newKey[1];
        emit PasskeyCreated(account, domain, credentialId);
    }

    function _removeKey(address account, bytes memory credentialId, string memory domain) private {
        if (_accounts[domain][credentialId].remove(account)) {
            delete _publicKeys[domain][credentialId][account];
            --_keyCount[account];
            emit PasskeyRemoved(account, domain, credentialId);
        }
    }

    // ---------------------------------------------------------------- validation

    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash)
        external
        view
        returns (uint256)
    {
        return _isValid(msg.sender, userOpHash, userOp.signature) ? VALIDATION_SUCCESS : VALIDATION_FAILED;
    }

    function isValidSignatureWithSender(address, bytes32 signedHash, bytes calldata signature)
        external
        view
        returns (bytes4)
    {
        return _isValid(msg.sender, signedHash, signature) ? ERC1271_MAGIC : ERC1271_FAILED;
    }

    function _isValid(address account, bytes32 signedHash, bytes calldata signature) private view returns (bool) {
        uint256 form;
        assembly ("memory-safe") {
            if signature.length { form := byte(0, calldataload(signature.offset)) }
        }
        if (form == COMPACT || form == COMPACT_CROSS_ORIGIN_FALSE) {
            return _isValidCompact(account, signedHash, signature, form == COMPACT_CROSS_ORIGIN_FALSE);
        }
        (
            bool decoded,
            bytes calldata authenticatorData,
            bytes calldata clientData,
            bytes32 r,
            bytes32 s,
            bytes calldata credentialId
        ) = _decodeSignature(signature);
        if (!decoded || authenticatorData.length < 37) return false;
        if (authenticatorData[32] & FLAGS_UP_UV != FLAGS_UP_UV) return false;

        (bytes32 challenge0, bytes32 challenge1) = _challengeWords(signedHash);
        (bool challengeValid, uint256 originStart, uint256 originEnd) =
            _parseCanonical(clientData, challenge0, challenge1);
        if (!challengeValid) {
            // Not the browsers' usual serialisation: the general JSON scan decides (in memory).
            bytes memory json = clientData;
            bytes memory expectedChallenge = _challengeBytes(challenge0, challenge1);
            (bool parsed, ClientData memory cd) = _parseClientData(json, expectedChallenge);
            if (!parsed || !cd.challenge.isString) return false;
            challengeValid = _equals(json, cd.challenge, expectedChallenge);
            if (!cd.type_.isString || !_equals(json, cd.type_, TYPE_GET)) return false;
            if (!cd.origin.isString || cd.origin.escaped) return false;
            if (cd.crossOrigin.present && (cd.crossOrigin.isString || !_equals(json, cd.crossOrigin, "false"))) {
                return false;
            }
            (originStart, originEnd) = (cd.origin.start, cd.origin.end);
        }

        (bytes32 qx, bytes32 qy) = _key(clientData[originStart:originEnd], credentialId, account);
        if (qx == 0 && qy == 0) return false;

        (bool hashed, bytes32 message) = _message(authenticatorData, clientData);
        bool signatureValid = _verifyP256(message, r, s, qx, qy);
        return signatureValid && challengeValid && hashed;
    }

    /// The compact form (see the contract's notes): the canonical clientDataJSON is rebuilt here from the
    /// signed hash and the origin, so only its variable part travels.
    function _isValidCompact(address account, bytes32 signedHash, bytes calldata signature, bool crossOriginFalse)
        private
        view
        returns (bool)
    {
        bool ok;
        bytes calldata authenticatorData = signature[0:0];
        bytes calldata credentialId = authenticatorData;
        bytes calldata origin = authenticatorData;
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            let base := signature.offset
            let length := signature.length
            if gt(length, 68) {
                r := calldataload(add(base, 1))
                s := calldataload(add(base, 33))
                let authLength := shr(240, calldataload(add(base, 65)))
                let idAt := add(67, authLength) // where the credential id's length is
                if iszero(gt(add(idAt, 2), length)) {
                    let idLength := shr(240, calldataload(add(base, idAt)))
                    let originAt := add(add(idAt, 2), idLength)
                    if iszero(gt(originAt, length)) {
                        ok := 1
                        authenticatorData.offset := add(base, 67)
                        authenticatorData.length := authLength
                        credentialId.offset := add(base, add(idAt, 2))
                        credentialId.length := idLength
                        origin.offset := add(base, originAt)
                        origin.length := sub(length, originAt)
                    }
                }
            }
        }
        if (!ok || authenticatorData.length < 37) return false;
        if (authenticatorData[32] & FLAGS_UP_UV != FLAGS_UP_UV) return false;
        // The origin goes into a JSON string as it is: no quote or backslash (as on the canonical path).
        if (_hasQuoteOrBackslash(origin)) return false;

        (bytes32 qx, bytes32 qy) = _key(origin, credentialId, account);
        if (qx == 0 && qy == 0) return false;

        (bytes32 challenge0, bytes32 challenge1) = _challengeWords(signedHash);
        bool hashed;
        bytes32 message;
        assembly ("memory-safe") {
            // {"type":"webauthn.get","challenge":"<43>","origin":"<origin>"}  or  ...",crossOrigin":false}
            let json := mload(0x40)
            mstore(json, HEAD_0)
            mstore(add(json, 0x20), HEAD_1)
            mstore(add(json, CHALLENGE_START), challenge0)
            mstore(add(json, add(CHALLENGE_START, 0x20)), challenge1)
            mstore(add(json, ORIGIN_PREFIX_START), ORIGIN_PREFIX)
            calldatacopy(add(json, ORIGIN_START), origin.offset, origin.length)
            let end := add(add(json, ORIGIN_START), origin.length)
            let jsonLength := add(add(ORIGIN_START, origin.length), 2)
            switch crossOriginFalse
            case 0 { mstore(end, shl(240, 0x227d)) } // "}
            default {
                mstore(end, shl(248, 0x22)) // "
                mstore(add(end, 1), TAIL_CROSS_ORIGIN_FALSE)
                jsonLength := add(jsonLength, 20)
            }
            hashed := staticcall(gas(), 0x02, json, jsonLength, 0x00, 0x20)
            // sha256(authenticatorData ‖ sha256(clientDataJSON))
            let ptr := add(json, and(add(jsonLength, 0x3f), not(0x1f)))
            let authLength := authenticatorData.length
            calldatacopy(ptr, authenticatorData.offset, authLength)
            mstore(add(ptr, authLength), mload(0x00))
            hashed := and(hashed, staticcall(gas(), 0x02, ptr, add(authLength, 0x20), 0x00, 0x20))
            message := mload(0x00)
        }
        return _verifyP256(message, r, s, qx, qy) && hashed;
    }

    /// Whether `data` holds a '"' or a '\' (one 32-byte word at a time; bytes past its end are masked off).
    function _hasQuoteOrBackslash(bytes calldata data) private pure returns (bool found) {
        assembly ("memory-safe") {
            let low7 := 0x7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f
            let quotes := 0x2222222222222222222222222222222222222222222222222222222222222222
            let backslashes := 0x5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c
            let length := data.length
            for { let p := 0 } lt(p, length) { p := add(p, 0x20) } {
                let w := calldataload(add(data.offset, p))
                let rest := sub(length, p)
                if lt(rest, 0x20) { w := and(w, not(shr(mul(rest, 8), not(0)))) }
                let x := xor(w, quotes)
                let y := xor(w, backslashes)
                if or(
                    not(or(or(add(and(x, low7), low7), x), low7)),
                    not(or(or(add(and(y, low7), low7), y), low7))
                ) {
                    found := 1
                    break
                }
            }
        }
    }

    /// The key registered for (origin, credentialId, account): `_publicKeys[origin][credentialId][account]`,
    /// hashed straight from calldata (Solidity's slots for a string/bytes key: keccak256(key ‖ slot); for an
    /// address key: keccak256(abi.encode(key, slot))).
    function _key(bytes calldata origin, bytes calldata credentialId, address account)
        private
        view
        returns (bytes32 qx, bytes32 qy)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, origin.offset, origin.length)
            mstore(add(ptr, origin.length), _publicKeys.slot)
            let slot := keccak256(ptr, add(origin.length, 0x20))
            calldatacopy(ptr, credentialId.offset, credentialId.length)
            mstore(add(ptr, credentialId.length), slot)
            mstore(0x20, keccak256(ptr, add(credentialId.length, 0x20)))
            mstore(0x00, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            slot := keccak256(0x00, 0x40)
            qx := sload(slot)
            qy := sload(add(slot, 1))
        }
    }

    /// sha256(authenticatorData ‖ sha256(clientDataJSON)): the message WebAuthn signs, with the SHA-256
    /// precompile (`ok` is false only if it did not answer).
    function _message(bytes calldata authenticatorData, bytes calldata clientData)
        private
        view
        returns (bool ok, bytes32 message)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, clientData.offset, clientData.length)
            ok := staticcall(gas(), 0x02, ptr, clientData.length, 0x00, 0x20)
            let authLength := authenticatorData.length
            calldatacopy(ptr, authenticatorData.offset, authLength)
            mstore(add(ptr, authLength), mload(0x00))
            ok := and(ok, staticcall(gas(), 0x02, ptr, add(authLength, 0x20), 0x00, 0x20))
            message := mload(0x00)
        }
    }

    // ---------------------------------------------------------------- challenge (base64url of the hash)

    uint256 private constant FIRST_11_BYTES = 0xffffffffffffffffffffff000000000000000000000000000000000000000000;

    /// The 43 characters of base64url(signedHash) (unpadded): the first 32 in `w0`, the last 11 left-aligned
    /// in `w1` (the rest of `w1` zero). SWAR, 32 characters at once: each 6-bit group first goes to its own
    /// byte (halving the field sizes five times: 192 bits into 2 × 96 in 128-bit lanes, ..., 12 bits into
    /// 2 × 6 in 8-bit lanes), then each byte v (0..63) becomes 'A' + v, 'a' + v - 26, '0' + v - 52, '-' or
    /// '_' from its ranges (v ≥ 26, ≥ 52, ≥ 62, ≥ 63, each a 0/1 lane from the high bit of v + 128 - bound;
    /// no lane ever carries into the next).
    function _challengeWords(bytes32 signedHash) private pure returns (bytes32 w0, bytes32 w1) {
        assembly ("memory-safe") {
            // base64url characters of the top 192 bits of x, one per byte (SWAR: all 32 at once)
            function lanes(x) -> v {
                v := or(shr(16, and(x, 0xffffffffffff00000000000000000000ffffffffffff00000000)),
                    and(x, not(0xffffffffffff00000000000000000000ffffffffffff00000000)))
                let t := and(v, 0xffffff0000000000ffffff0000000000ffffff0000000000ffffff0000)
                v := or(xor(v, t), shr(8, t))
                t := and(v, 0xfff00000fff00000fff00000fff00000fff00000fff00000fff00000fff00)
                v := or(xor(v, t), shr(4, t))
                t := and(v, 0x3f003f003f003f003f003f003f003f003f003f003f003f003f003f003f003f0)
                v := shr(2, or(xor(v, t), shr(2, t)))
                // v ≥ 26, ≥ 52, ≥ 62, ≥ 63 as 0/1 lanes: the high bit of v + 128 - bound
                let geq26 := shr(7, and(add(v, 0x6666666666666666666666666666666666666666666666666666666666666666), 0x8080808080808080808080808080808080808080808080808080808080808080))
                let geq52 := shr(7, and(add(v, 0x4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c), 0x8080808080808080808080808080808080808080808080808080808080808080))
                let geq62 := shr(7, and(add(v, 0x4242424242424242424242424242424242424242424242424242424242424242), 0x8080808080808080808080808080808080808080808080808080808080808080))
                let geq63 := shr(7, and(add(v, 0x4141414141414141414141414141414141414141414141414141414141414141), 0x8080808080808080808080808080808080808080808080808080808080808080))
                v := sub(
                    add(add(v, 0x4141414141414141414141414141414141414141414141414141414141414141), add(mul(6, geq26), mul(49, geq63))),
                    add(mul(75, geq52), mul(13, geq62))
                )
            }
            // bits 0..191: 32 characters (first 192 bits into two 96-bit halves of 128-bit lanes)
            let x := and(signedHash, not(0xffffffffffffffff))
            let t := and(x, 0xffffffffffffffffffffffff0000000000000000)
            w0 := lanes(or(xor(x, t), shr(32, t)))
            // bits 192..255 and 2 zero bits: 11 characters (64 bits already sit in the first 128-bit lane)
            w1 := and(lanes(shl(192, signedHash)), FIRST_11_BYTES)
        }
    }

    /// The 43 challenge characters as a bytes value (for the general parser).
    function _challengeBytes(bytes32 w0, bytes32 w1) private pure returns (bytes memory out) {
        out = new bytes(64);
        assembly ("memory-safe") {
            mstore(add(out, 0x20), w0)
            mstore(add(out, 0x40), w1)
            mstore(out, CHALLENGE_LENGTH)
        }
    }

    /// abi.decode(signature, (bytes, string, bytes32[2], bytes)) without copying: calldata slices;
    /// `ok` is false (and the slices empty) when the payload is not such an encoding (a head shorter than
    /// five words, or an offset or a length pointing past the end).
    function _decodeSignature(bytes calldata signature)
        private
        pure
        returns (
            bool ok,
            bytes calldata authenticatorData,
            bytes calldata clientData,
            bytes32 r,
            bytes32 s,
            bytes calldata credentialId
        )
    {
        assembly ("memory-safe") {
            let base := signature.offset
            let length := signature.length
            authenticatorData.offset := base
            clientData.offset := base
            credentialId.offset := base
            if iszero(lt(length, 160)) {
                ok := 1
                // the dynamic value whose offset is at head `h`: its data start, length and validity
                function tail(b, len, h) -> start, size, valid {
                    let offset := calldataload(add(b, h))
                    valid := iszero(gt(offset, sub(len, 0x20)))
                    if valid {
                        size := calldataload(add(b, offset))
                        valid := iszero(gt(size, sub(sub(len, 0x20), offset)))
                        start := add(add(b, offset), 0x20)
                    }
                }
                let start, size, valid := tail(base, length, 0x00)
                if valid {
                    authenticatorData.offset := start
                    authenticatorData.length := size
                }
                ok := and(ok, valid)
                start, size, valid := tail(base, length, 0x20)
                if valid {
                    clientData.offset := start
                    clientData.length := size
                }
                ok := and(ok, valid)
                start, size, valid := tail(base, length, 0x80)
                if valid {
                    credentialId.offset := start
                    credentialId.length := size
                }
                ok := and(ok, valid)
                r := calldataload(add(base, 0x40))
                s := calldataload(add(base, 0x60))
            }
            if iszero(ok) {
                authenticatorData.length := 0
                clientData.length := 0
                credentialId.length := 0
            }
        }
    }

    /// P-256 verification, low s only: the P256VERIFY precompile first; when it does not confirm the
    /// signature (invalid, or no precompile on this chain), OpenZeppelin's P256.verify decides (it checks the
    /// ranges and the key, calls the precompile or, without one, verifies in Solidity).
    function _verifyP256(bytes32 message, bytes32 r, bytes32 s, bytes32 qx, bytes32 qy) private view returns (bool) {
        if (uint256(s) > P256_HALF_N) return false;
        bool confirmed;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, message)
            mstore(add(ptr, 0x20), r)
            mstore(add(ptr, 0x40), s)
            mstore(add(ptr, 0x60), qx)
            mstore(add(ptr, 0x80), qy)
            mstore(0x00, 0)
            let success := staticcall(gas(), 0x100, ptr, 0xa0, 0x00, 0x20)
            confirmed := and(and(success, eq(returndatasize(), 0x20)), eq(mload(0x00), 1))
        }
        return confirmed || P256.verify(message, r, s, qx, qy);
    }

    // ---------------------------------------------------------------- clientDataJSON

    bytes private constant TYPE_GET = "webauthn.get";

    /// A top-level JSON member value inside clientDataJSON: [start, end) bytes, strings without their quotes.
    struct Field {
        uint256 start;
        uint256 end;
        bool present;
        bool isString;
        bool escaped;
    }

    struct ClientData {
        Field challenge;
        Field type_;
        Field origin;
        Field crossOrigin;
    }

    // {"type":"webauthn.get","challenge":"   (36 bytes: one word + 4)
    bytes32 private constant HEAD_0 = 0x7b2274797065223a22776562617574686e2e676574222c226368616c6c656e67;
    bytes32 private constant HEAD_1 = 0x65223a2200000000000000000000000000000000000000000000000000000000; // 'e":"', left-aligned
    uint256 private constant CHALLENGE_START = 36;
    uint256 private constant CHALLENGE_LENGTH = 43; // base64url of 32 bytes, unpadded
    // ","origin":"   (12 bytes)
    bytes32 private constant ORIGIN_PREFIX = 0x222c226f726967696e223a220000000000000000000000000000000000000000; // left-aligned
    uint256 private constant ORIGIN_START = 91; // CHALLENGE_START + CHALLENGE_LENGTH + 12
    uint256 private constant ORIGIN_PREFIX_START = 79;
    // ,"crossOrigin":false}   (21 bytes)
    bytes32 private constant TAIL_CROSS_ORIGIN_FALSE = 0x2c2263726f73734f726967696e223a66616c73657d0000000000000000000000; // left-aligned

    /// The serialisation browsers produce (WebAuthn's CollectedClientData order, no extra members):
    /// {"type":"webauthn.get","challenge":"<expected>","origin":"<origin>"[,"crossOrigin":false]}
    /// Returns whether `json` (read in place, in calldata) is exactly that for the challenge characters
    /// (w0, w1), and where the origin is; otherwise the general parser decides.
    function _parseCanonical(bytes calldata json, bytes32 w0, bytes32 w1)
        private
        pure
        returns (bool canonical, uint256 originStart, uint256 originEnd)
    {
        uint256 length = json.length;
        if (length <= ORIGIN_START) return (false, 0, 0);
        originStart = ORIGIN_START;
        assembly ("memory-safe") {
            let base := json.offset
            canonical := and(
                and(
                    eq(calldataload(base), HEAD_0),
                    eq(and(calldataload(add(base, 0x20)), shl(224, 0xffffffff)), HEAD_1)
                ),
                and(
                    and(
                        eq(calldataload(add(base, CHALLENGE_START)), w0),
                        eq(and(calldataload(add(base, add(CHALLENGE_START, 0x20))), FIRST_11_BYTES), w1)
                    ),
                    eq(
                        and(calldataload(add(base, ORIGIN_PREFIX_START)), shl(160, 0xffffffffffffffffffffffff)),
                        ORIGIN_PREFIX
                    )
                )
            )
            // Find the first '"' or '\' of the origin, one 32-byte word at a time: a byte of x is zero
            // exactly when the high bit of that byte in z is set. (Bytes past the end of `json` may be
            // read; the end found is then checked against the length.)
            originEnd := length
            if canonical {
                let low7 := 0x7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f
                let quotes := 0x2222222222222222222222222222222222222222222222222222222222222222
                let backslashes := 0x5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c
                for { let p := originStart } lt(p, length) { p := add(p, 0x20) } {
                    let w := calldataload(add(base, p))
                    let x := xor(w, quotes)
                    let y := xor(w, backslashes)
                    let z := or(
                        not(or(or(add(and(x, low7), low7), x), low7)),
                        not(or(or(add(and(y, low7), low7), y), low7))
                    )
                    if z {
                        // index of the most significant set byte = number of leading zero bytes
                        let n := 0
                        if iszero(shr(128, z)) {
                            n := 16
                            z := shl(128, z)
                        }
                        if iszero(shr(192, z)) {
                            n := add(n, 8)
                            z := shl(64, z)
                        }
                        if iszero(shr(224, z)) {
                            n := add(n, 4)
                            z := shl(32, z)
                        }
                        if iszero(shr(240, z)) {
                            n := add(n, 2)
                            z := shl(16, z)
                        }
                        if iszero(shr(248, z)) { n := add(n, 1) }
                        originEnd := add(p, n)
                        break
                    }
                }
                // The end must be a quote inside the data, followed by `}` or `,"crossOrigin":false}`.
                canonical := 0
                if lt(originEnd, length) {
                    if eq(byte(0, calldataload(add(base, originEnd))), 0x22) {
                        let rest := sub(length, add(originEnd, 1))
                        let after := calldataload(add(base, add(originEnd, 1)))
                        if eq(rest, 1) { canonical := eq(byte(0, after), 0x7d) }
                        if eq(rest, 21) {
                            canonical :=
                                eq(and(after, shl(88, 0xffffffffffffffffffffffffffffffffffffffffff)), TAIL_CROSS_ORIGIN_FALSE)
                        }
                    }
                }
            }
        }
    }

    /// Scans a JSON object's top-level members once and records where the four fields we need are.
    /// Other members (any JSON value, nested or not) are skipped; for a repeated member the last one wins.
    /// `challenge` and `type` values are first compared with what is expected (and skipped in one step
    /// when equal), which keeps the usual case cheap.
    /// `ok` is false when `json` is not such an object.
    function _parseClientData(bytes memory json, bytes memory expectedChallenge)
        private
        pure
        returns (bool ok, ClientData memory cd)
    {
        uint256 length = json.length;
        uint256 i = _skipWhitespace(json, 0);
        if (i >= length || _at(json, i) != "{") return (false, cd);
        i = _skipWhitespace(json, i + 1);
        if (i < length && _at(json, i) == "}") return (true, cd);
        while (true) {
            if (i >= length || _at(json, i) != '"') return (false, cd);
            uint256 keyStart = i + 1;
            (uint256 keyEnd,) = _stringEnd(json, i);
            if (keyEnd >= length) return (false, cd);
            i = _skipWhitespace(json, keyEnd + 1);
            if (i >= length || _at(json, i) != ":") return (false, cd);
            i = _skipWhitespace(json, i + 1);
            if (i >= length) return (false, cd);

            bytes32 key = _word(json, keyStart, keyEnd - keyStart);
            Field memory value = Field(i, 0, true, false, false);
            if (_at(json, i) == '"') {
                value.start = i + 1;
                value.isString = true;
                if (key == bytes32("challenge") && _isStringAt(json, i + 1, expectedChallenge)) {
                    value.end = i + 1 + expectedChallenge.length;
                } else if (key == bytes32("type") && _isStringAt(json, i + 1, TYPE_GET)) {
                    value.end = i + 1 + TYPE_GET.length;
                } else {
                    (value.end, value.escaped) = _stringEnd(json, i);
                    if (value.end >= length) return (false, cd);
                }
                i = value.end + 1;
            } else {
                i = _skipValue(json, i);
                value.end = i;
            }

            if (key == bytes32("challenge")) cd.challenge = value;
            else if (key == bytes32("type")) cd.type_ = value;
            else if (key == bytes32("origin")) cd.origin = value;
            else if (key == bytes32("crossOrigin")) cd.crossOrigin = value;

            i = _skipWhitespace(json, i);
            if (i >= length) return (false, cd);
            bytes1 c = _at(json, i);
            if (c == "}") return (true, cd);
            if (c != ",") return (false, cd);
            i = _skipWhitespace(json, i + 1);
        }
    }

    /// Whether the JSON string content starting at `start` is exactly `expected` (followed by the closing
    /// quote). Only for `expected` without quotes or backslashes.
    function _isStringAt(bytes memory json, uint256 start, bytes memory expected) private pure returns (bool same) {
        uint256 length = expected.length;
        if (start + length >= json.length) return false;
        assembly ("memory-safe") {
            let p := add(add(json, 0x20), start)
            same := and(
                eq(keccak256(p, length), keccak256(add(expected, 0x20), length)),
                eq(byte(0, mload(add(p, length))), 0x22)
            )
        }
    }

    /// Index of the closing quote of the string whose opening quote is at `i` (the length of `json` if
    /// there is none), and whether it had escapes.
    function _stringEnd(bytes memory json, uint256 i) private pure returns (uint256 end, bool escaped) {
        uint256 length = json.length;
        end = length;
        assembly ("memory-safe") {
            let base := add(json, 0x20)
            for { let p := add(i, 1) } lt(p, length) { p := add(p, 1) } {
                let c := byte(0, mload(add(base, p)))
                if eq(c, 0x22) {
                    end := p
                    break
                }
                if eq(c, 0x5c) {
                    escaped := 1
                    p := add(p, 1)
                }
            }
        }
    }

    /// Index just after the non-string JSON value (literal, number, object or array) starting at `i`
    /// (the length of `json` if it does not end).
    function _skipValue(bytes memory json, uint256 i) private pure returns (uint256) {
        uint256 length = json.length;
        uint256 depth = 0;
        unchecked {
            for (; i < length; ++i) {
                bytes1 c = _at(json, i);
                if (c == '"') {
                    (i,) = _stringEnd(json, i);
                    if (i >= length) return length;
                } else if (c == "{" || c == "[") {
                    ++depth;
                } else if (c == "}" || c == "]") {
                    if (depth == 0) return i;
                    --depth;
                    if (depth == 0) return i + 1;
                } else if (depth == 0 && (c == "," || c == " " || c == "\t" || c == "\n" || c == "\r")) {
                    return i;
                }
            }
        }
        return length;
    }

    function _skipWhitespace(bytes memory json, uint256 i) private pure returns (uint256 j) {
        assembly ("memory-safe") {
            let base := add(json, 0x20)
            let length := mload(json)
            // space, \t, \n, \r
            for { j := i } lt(j, length) { j := add(j, 1) } {
                let c := byte(0, mload(add(base, j)))
                if iszero(and(shr(c, 0x100002600), 1)) { break }
            }
        }
    }

    function _at(bytes memory data, uint256 i) private pure returns (bytes1 c) {
        assembly ("memory-safe") {
            c := mload(add(add(data, 0x20), i))
        }
    }

    /// Up to 32 bytes of `data` at `start`, left-aligned and zero-padded; (0xff..) for longer ranges.
    function _word(bytes memory data, uint256 start, uint256 length) private pure returns (bytes32 w) {
        if (length > 32) return bytes32(type(uint256).max);
        assembly ("memory-safe") {
            w := mload(add(add(data, 0x20), start))
            if lt(length, 32) { w := and(w, not(shr(mul(length, 8), not(0)))) }
        }
    }

    function _equals(bytes memory json, Field memory field, bytes memory expected) private pure returns (bool same) {
        uint256 length = field.end - field.start;
        if (length != expected.length) return false;
        uint256 start = field.start;
        assembly ("memory-safe") {
            same := eq(keccak256(add(add(json, 0x20), start), length), keccak256(add(expected, 0x20), length))
        }
    }

}
