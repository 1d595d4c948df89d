// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
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
/// Signature payload: abi.encode(bytes authenticatorData, string clientDataJSON, bytes32[2] rs, bytes credentialId).
/// A signature is valid when, in this order:
/// - authenticatorData's flags have User Present and User Verified set (else revert InvalidAuthDataFlags);
/// - clientDataJSON is a JSON object whose `challenge` is the base64url (no padding) of the signed hash,
///   whose `type` is "webauthn.get" (else revert InvalidClientData("type")), whose `origin` and the credential
///   id name a key registered for the account, and whose `crossOrigin`, if present, is the literal `false`
///   (else revert InvalidClientData("crossOrigin"));
/// - (r, s) is a low-s P-256 signature of sha256(authenticatorData ‖ sha256(clientDataJSON)) by that key,
///   checked by the P256VERIFY precompile at 0x100.
contract WebAuthnValidator is IValidator, IERC165 {
    using EnumerableSet for EnumerableSet.AddressSet;

    struct PasskeyId {
        string domain;
        bytes credentialId;
    }

    bytes1 private constant FLAGS_UP_UV = 0x05;
    uint256 private constant MIN_CREDENTIAL_ID_LENGTH = 16;
    uint256 private constant MAX_DOMAIN_LENGTH = 255;

    mapping(string domain => mapping(bytes credentialId => mapping(address account => bytes32[2] key))) private
        _publicKeys;
    mapping(string domain => mapping(bytes credentialId => EnumerableSet.AddressSet accounts)) private _accounts;

    event PasskeyCreated(address indexed keyOwner, string domain, bytes credentialId);
    event PasskeyRemoved(address indexed keyOwner, string domain, bytes credentialId);

    error BadCredentialIDLength();
    error BadDomainLength();
    error EmptyKey();
    error InvalidAuthDataFlags(bytes1 flags);
    error InvalidClientData(string field);
    error KeyAlreadyExists();
    error KeyNotFound(string domain, bytes credentialId, address account);

    // ---------------------------------------------------------------- module

    /// @param data empty, or abi.encode(bytes credentialId, bytes32[2] publicKey, string domain)
    function onInstall(bytes calldata data) external {
        if (data.length == 0) return;
        (bytes memory credentialId, bytes32[2] memory publicKey, string memory domain) =
            abi.decode(data, (bytes, bytes32[2], string));
        _addKey(msg.sender, credentialId, publicKey, domain);
    }

    /// @param data abi.encode(PasskeyId[]) of the keys to remove
    function onUninstall(bytes calldata data) external {
        PasskeyId[] memory ids = abi.decode(data, (PasskeyId[]));
        for (uint256 i = 0; i < ids.length; ++i) {
            _removeKey(msg.sender, ids[i].credentialId, ids[i].domain);
        }
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
        key[0] = newKey[0];
        key[1] = newKey[1];
        emit PasskeyCreated(account, domain, credentialId);
    }

    function _removeKey(address account, bytes memory credentialId, string memory domain) private {
        if (_accounts[domain][credentialId].remove(account)) {
            delete _publicKeys[domain][credentialId][account];
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
        (bytes memory authenticatorData, bytes memory clientDataJSON, bytes32[2] memory rs, bytes memory credentialId)
        = abi.decode(signature, (bytes, bytes, bytes32[2], bytes));

        if (authenticatorData.length < 37) revert InvalidAuthDataFlags(0x00);
        bytes1 flags = authenticatorData[32];
        if (flags & FLAGS_UP_UV != FLAGS_UP_UV) revert InvalidAuthDataFlags(flags);

        ClientData memory cd = _parseClientData(clientDataJSON);

        if (!cd.challenge.isString) revert InvalidClientData("challenge");
        bool challengeValid =
            _equals(clientDataJSON, cd.challenge, bytes(Base64.encodeURL(abi.encodePacked(signedHash))));

        if (!cd.type_.isString || !_equals(clientDataJSON, cd.type_, "webauthn.get")) {
            revert InvalidClientData("type");
        }
        if (!cd.origin.isString || cd.origin.escaped) revert InvalidClientData("origin");
        if (cd.crossOrigin.present && (cd.crossOrigin.isString || !_equals(clientDataJSON, cd.crossOrigin, "false")))
        {
            revert InvalidClientData("crossOrigin");
        }

        bytes32[2] storage key = _publicKeys[string(_slice(clientDataJSON, cd.origin))][credentialId][account];
        bytes32 qx = key[0];
        bytes32 qy = key[1];
        if (qx == 0 && qy == 0) return false;

        bytes32 message = sha256(abi.encodePacked(authenticatorData, sha256(clientDataJSON)));
        // OpenZeppelin's P256 rejects s > N/2 (malleable signatures) before calling the precompile.
        bool signatureValid = P256.verifyNative(message, rs[0], rs[1], qx, qy);
        return signatureValid && challengeValid;
    }

    // ---------------------------------------------------------------- clientDataJSON

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

    /// Scans a JSON object's top-level members once and records where the four fields we need are.
    /// Other members (any JSON value, nested or not) are skipped; for a repeated member the last one wins.
    function _parseClientData(bytes memory json) private pure returns (ClientData memory cd) {
        uint256 length = json.length;
        uint256 i = _skipWhitespace(json, 0);
        if (i >= length || _at(json, i) != "{") revert InvalidClientData("json");
        i = _skipWhitespace(json, i + 1);
        if (i < length && _at(json, i) == "}") return cd;
        while (true) {
            if (i >= length || _at(json, i) != '"') revert InvalidClientData("json");
            uint256 keyStart = i + 1;
            (uint256 keyEnd,) = _stringEnd(json, i);
            i = _skipWhitespace(json, keyEnd + 1);
            if (i >= length || _at(json, i) != ":") revert InvalidClientData("json");
            i = _skipWhitespace(json, i + 1);
            if (i >= length) revert InvalidClientData("json");

            Field memory value;
            value.present = true;
            if (_at(json, i) == '"') {
                (uint256 end, bool escaped) = _stringEnd(json, i);
                value.start = i + 1;
                value.end = end;
                value.isString = true;
                value.escaped = escaped;
                i = end + 1;
            } else {
                value.start = i;
                i = _skipValue(json, i);
                value.end = i;
            }

            bytes32 key = _word(json, keyStart, keyEnd - keyStart);
            if (key == bytes32("challenge")) cd.challenge = value;
            else if (key == bytes32("type")) cd.type_ = value;
            else if (key == bytes32("origin")) cd.origin = value;
            else if (key == bytes32("crossOrigin")) cd.crossOrigin = value;

            i = _skipWhitespace(json, i);
            if (i >= length) revert InvalidClientData("json");
            bytes1 c = _at(json, i);
            if (c == "}") break;
            if (c != ",") revert InvalidClientData("json");
            i = _skipWhitespace(json, i + 1);
        }
    }

    /// Index of the closing quote of the string whose opening quote is at `i`, and whether it had escapes.
    function _stringEnd(bytes memory json, uint256 i) private pure returns (uint256 end, bool escaped) {
        uint256 length = json.length;
        unchecked {
            for (end = i + 1; end < length; ++end) {
                bytes1 c = _at(json, end);
                if (c == '"') return (end, escaped);
                if (c == "\\") {
                    escaped = true;
                    ++end;
                }
            }
        }
        revert InvalidClientData("json");
    }

    /// Index just after the non-string JSON value (literal, number, object or array) starting at `i`.
    function _skipValue(bytes memory json, uint256 i) private pure returns (uint256) {
        uint256 length = json.length;
        uint256 depth = 0;
        unchecked {
            for (; i < length; ++i) {
                bytes1 c = _at(json, i);
                if (c == '"') {
                    (i,) = _stringEnd(json, i);
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
        revert InvalidClientData("json");
    }

    function _skipWhitespace(bytes memory json, uint256 i) private pure returns (uint256) {
        uint256 length = json.length;
        unchecked {
            while (i < length) {
                bytes1 c = _at(json, i);
                if (c != " " && c != "\t" && c != "\n" && c != "\r") break;
                ++i;
            }
        }
        return i;
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

    function _slice(bytes memory json, Field memory field) private pure returns (bytes memory out) {
        uint256 length = field.end - field.start;
        out = new bytes(length);
        uint256 start = field.start;
        assembly ("memory-safe") {
            mcopy(add(out, 0x20), add(add(json, 0x20), start), length)
        }
    }
}
