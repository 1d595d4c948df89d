// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EnumerableMap} from "@openzeppelin/contracts/utils/structs/EnumerableMap.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {
    IModule,
    IExecutor,
    IModularAccount,
    MODULE_TYPE_VALIDATOR,
    MODULE_TYPE_EXECUTOR
} from "./interfaces/IERC7579Module.sol";

/// @title GuardianExecutor
/// @notice ERC-7579 executor (module type 2) for guardian-based recovery, with ZKsync SSO's interface.
///
/// An account proposes guardians (any address but zero and itself); a proposed guardian becomes active
/// when it accepts. An active guardian may start a recovery of the account: a request to add one key,
/// either an owner of the EOAKeyValidator (`addOwner(address)`) or a passkey of the WebAuthnValidator
/// (`addValidationKey(bytes,bytes32[2],string)`); the request stores only the hash of the call's
/// arguments. Anyone may finalize it with the same arguments strictly after REQUEST_DELAY_TIME and
/// strictly before REQUEST_VALIDITY_TIME from its start: the executor then calls the validator from the
/// account (executeFromExecutor). Until then the account can discard it, and removing an active
/// guardian discards it too. Recovery only adds a key; it never removes one.
///
/// Beyond SSO: an EOA guardian may also accept and start a recovery by an EIP-712 signature that anyone
/// submits (`acceptGuardianWithSignature`, `initializeRecoveryWithSignature`), so a guardian key with no
/// ETH (a recovery key derived from a code) needs no transaction of its own. Each signature names the
/// guardian's next nonce and a deadline, and is usable once.
contract GuardianExecutor is IExecutor, IERC165 {
    using EnumerableMap for EnumerableMap.AddressToUintMap;

    enum RecoveryType {
        None,
        EOA,
        Passkey
    }

    struct RecoveryRequest {
        RecoveryType recoveryType;
        bytes32 hashedData;
        uint48 timestamp;
    }

    uint256 public constant REQUEST_DELAY_TIME = 24 hours;
    uint256 public constant REQUEST_VALIDITY_TIME = 72 hours;

    address public immutable WEBAUTHN_VALIDATOR;
    address public immutable EOA_VALIDATOR;

    /// Guardian => status per account; bit 0 of the status = accepted (active).
    mapping(address account => EnumerableMap.AddressToUintMap guardians) private _accountGuardians;
    mapping(address account => RecoveryRequest) public pendingRecovery;
    /// The nonce the guardian's next signature must name.
    mapping(address guardian => uint256) public guardianNonces;
    uint256[49] private __gap;

    uint256 private constant ACTIVE = 1;
    bytes32 private constant EXECUTION_MODE_SINGLE = bytes32(0);
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant ACCEPT_GUARDIAN_TYPEHASH =
        keccak256("AcceptGuardian(address account,address guardian,uint256 nonce,uint256 deadline)");
    bytes32 public constant INITIALIZE_RECOVERY_TYPEHASH = keccak256(
        "InitializeRecovery(address account,address guardian,uint8 recoveryType,bytes32 dataHash,uint256 nonce,uint256 deadline)"
    );

    event GuardianProposed(address indexed account, address indexed guardian);
    event GuardianAdded(address indexed account, address indexed guardian);
    event GuardianRemoved(address indexed account, address indexed guardian);
    event RecoveryInitiated(
        address indexed account, address indexed guardian, RecoveryRequest request, bytes recoveryData
    );
    event RecoveryFinished(address indexed account);
    event RecoveryDiscarded(address indexed account);

    error GuardianInvalidAddress(address guardian);
    error GuardianAlreadyPresent(address account, address guardian);
    error GuardianNotFound(address account, address guardian);
    error GuardianNotActive(address account, address guardian);
    error ValidatorNotInstalled(address account, address validator);
    error UnsupportedRecoveryType(RecoveryType recoveryType);
    error EmptyRecoveryData();
    error RecoveryInProgress(address account);
    error NoRecoveryInProgress(address account);
    error RecoveryDataMismatch(bytes32 savedHash, bytes32 providedHash);
    error RecoveryTimestampInvalid(uint48 timestamp);
    error SignatureExpired(uint256 deadline);
    error InvalidGuardianSignature(address guardian);

    constructor(address webAuthValidator, address eoaValidator) {
        WEBAUTHN_VALIDATOR = webAuthValidator;
        EOA_VALIDATOR = eoaValidator;
    }

    modifier onlyInitialized(address account) {
        if (!isInitialized(account)) revert NotInitialized(account);
        _;
    }

    // ---------------------------------------------------------------- module

    function onInstall(bytes calldata) external view {}

    /// Forgets every guardian of the account (no per-guardian events) and discards its recovery.
    function onUninstall(bytes calldata) external {
        EnumerableMap.AddressToUintMap storage guardians = _accountGuardians[msg.sender];
        guardians.clear();
        _discard(msg.sender);
    }

    function isModuleType(uint256 moduleType) external pure returns (bool) {
        return moduleType == MODULE_TYPE_EXECUTOR;
    }

    function isInitialized(address account) public view returns (bool) {
        return IModularAccount(account).isModuleInstalled(MODULE_TYPE_EXECUTOR, address(this), "");
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC165).interfaceId || interfaceId == type(IExecutor).interfaceId
            || interfaceId == type(IModule).interfaceId;
    }

    // ---------------------------------------------------------------- guardians (called by the account)

    function proposeGuardian(address newGuardian) external onlyInitialized(msg.sender) {
        if (newGuardian == address(0) || newGuardian == msg.sender) revert GuardianInvalidAddress(newGuardian);
        if (!_accountGuardians[msg.sender].set(newGuardian, 0)) {
            revert GuardianAlreadyPresent(msg.sender, newGuardian);
        }
        emit GuardianProposed(msg.sender, newGuardian);
    }

    function removeGuardian(address guardianToRemove) external onlyInitialized(msg.sender) {
        EnumerableMap.AddressToUintMap storage guardians = _accountGuardians[msg.sender];
        (bool present, uint256 status) = guardians.tryGet(guardianToRemove);
        if (!present) revert GuardianNotFound(msg.sender, guardianToRemove);
        guardians.remove(guardianToRemove);
        if (status & ACTIVE != 0) _discard(msg.sender);
        emit GuardianRemoved(msg.sender, guardianToRemove);
    }

    /// Drops the account's pending recovery, if any. Never reverts.
    function discardRecovery() external {
        _discard(msg.sender);
    }

    // ---------------------------------------------------------------- guardians (called by the guardian)

    /// @return true when the caller became active, false when it already was
    function acceptGuardian(address accountToGuard) external onlyInitialized(accountToGuard) returns (bool) {
        return _accept(accountToGuard, msg.sender);
    }

    /// acceptGuardian on behalf of the EOA `guardian`, by its AcceptGuardian signature.
    function acceptGuardianWithSignature(
        address accountToGuard,
        address guardian,
        uint256 deadline,
        bytes calldata signature
    ) external onlyInitialized(accountToGuard) returns (bool) {
        _useSignature(
            keccak256(
                abi.encode(ACCEPT_GUARDIAN_TYPEHASH, accountToGuard, guardian, guardianNonces[guardian], deadline)
            ),
            guardian,
            deadline,
            signature
        );
        return _accept(accountToGuard, guardian);
    }

    /// Starts a recovery of `accountToRecover` adding the key in `data` (the ABI-encoded arguments of
    /// EOAKeyValidator.addOwner or WebAuthnValidator.addValidationKey). Only an active guardian; refused
    /// while another request is still within its validity window.
    function initializeRecovery(address accountToRecover, RecoveryType recoveryType, bytes calldata data)
        external
    {
        _initialize(accountToRecover, recoveryType, data, msg.sender);
    }

    /// initializeRecovery on behalf of the EOA `guardian`, by its InitializeRecovery signature.
    function initializeRecoveryWithSignature(
        address accountToRecover,
        RecoveryType recoveryType,
        bytes calldata data,
        address guardian,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _useSignature(
            keccak256(
                abi.encode(
                    INITIALIZE_RECOVERY_TYPEHASH,
                    accountToRecover,
                    guardian,
                    recoveryType,
                    keccak256(data),
                    guardianNonces[guardian],
                    deadline
                )
            ),
            guardian,
            deadline,
            signature
        );
        _initialize(accountToRecover, recoveryType, data, guardian);
    }

    /// Completes the pending recovery of `account` with the same `data` it was started with. Anyone may
    /// call it, strictly between REQUEST_DELAY_TIME and REQUEST_VALIDITY_TIME after the start.
    /// @return returnData what the validator call returned
    function finalizeRecovery(address account, bytes calldata data) external returns (bytes memory returnData) {
        RecoveryRequest memory request = pendingRecovery[account];
        address validator = _requireValidator(account, request.recoveryType);
        bytes32 providedHash = keccak256(data);
        if (request.hashedData != providedHash) revert RecoveryDataMismatch(request.hashedData, providedHash);
        if (request.timestamp == 0 || request.hashedData == bytes32(0)) revert NoRecoveryInProgress(account);
        uint256 started = request.timestamp;
        if (block.timestamp <= started + REQUEST_DELAY_TIME || block.timestamp >= started + REQUEST_VALIDITY_TIME) {
            revert RecoveryTimestampInvalid(request.timestamp);
        }
        delete pendingRecovery[account];

        // EOAKeyValidator.addOwner(address) / WebAuthnValidator.addValidationKey(bytes,bytes32[2],string)
        bytes4 selector = request.recoveryType == RecoveryType.EOA ? bytes4(0x7065cb48) : bytes4(0x8f5bc2af);
        bytes[] memory results = IModularAccount(account).executeFromExecutor(
            EXECUTION_MODE_SINGLE, abi.encodePacked(validator, uint256(0), selector, data)
        );
        returnData = results[0];
        emit RecoveryFinished(account);
    }

    // ---------------------------------------------------------------- views

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("GuardianExecutor"), keccak256("1"), block.chainid, address(this))
        );
    }

    function guardiansFor(address account) external view returns (address[] memory) {
        return _accountGuardians[account].keys();
    }

    function guardianStatusFor(address account, address guardian)
        external
        view
        returns (bool isPresent, bool isActive)
    {
        uint256 status;
        (isPresent, status) = _accountGuardians[account].tryGet(guardian);
        isActive = status & ACTIVE != 0;
    }

    // ---------------------------------------------------------------- internals

    function _accept(address accountToGuard, address guardian) private returns (bool) {
        EnumerableMap.AddressToUintMap storage guardians = _accountGuardians[accountToGuard];
        if (!guardians.contains(guardian)) revert GuardianNotFound(accountToGuard, guardian);
        uint256 status = guardians.get(guardian);
        if (status & ACTIVE != 0) return false;
        guardians.set(guardian, status | ACTIVE);
        emit GuardianAdded(accountToGuard, guardian);
        return true;
    }

    function _initialize(address accountToRecover, RecoveryType recoveryType, bytes calldata data, address guardian)
        private
    {
        (bool present, uint256 status) = _accountGuardians[accountToRecover].tryGet(guardian);
        if (!present) revert GuardianNotFound(accountToRecover, guardian);
        if (status & ACTIVE == 0) revert GuardianNotActive(accountToRecover, guardian);
        if (!isInitialized(accountToRecover)) revert NotInitialized(accountToRecover);
        _requireValidator(accountToRecover, recoveryType);
        if (data.length == 0) revert EmptyRecoveryData();
        uint48 previous = pendingRecovery[accountToRecover].timestamp;
        if (previous != 0 && previous + REQUEST_VALIDITY_TIME >= block.timestamp) {
            revert RecoveryInProgress(accountToRecover);
        }
        RecoveryRequest memory request = RecoveryRequest(recoveryType, keccak256(data), uint48(block.timestamp));
        pendingRecovery[accountToRecover] = request;
        emit RecoveryInitiated(accountToRecover, guardian, request, data);
    }

    /// Spends the guardian's nonce on its EIP-712 signature of `structHash` (low-s only).
    function _useSignature(bytes32 structHash, address guardian, uint256 deadline, bytes calldata signature)
        private
    {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
        (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecover(digest, signature);
        if (failure != ECDSA.RecoverError.NoError || signer != guardian || guardian == address(0)) {
            revert InvalidGuardianSignature(guardian);
        }
        guardianNonces[guardian] += 1;
    }

    /// The validator a recovery of this type adds a key to; it must be installed on the account.
    function _requireValidator(address account, RecoveryType recoveryType) private view returns (address validator) {
        if (recoveryType == RecoveryType.EOA) {
            validator = EOA_VALIDATOR;
        } else if (recoveryType == RecoveryType.Passkey) {
            validator = WEBAUTHN_VALIDATOR;
        } else {
            revert UnsupportedRecoveryType(recoveryType);
        }
        if (!IModularAccount(account).isModuleInstalled(MODULE_TYPE_VALIDATOR, validator, "")) {
            revert ValidatorNotInstalled(account, validator);
        }
    }

    function _discard(address account) private {
        bool existed = pendingRecovery[account].timestamp != 0;
        delete pendingRecovery[account];
        if (existed) emit RecoveryDiscarded(account);
    }
}
