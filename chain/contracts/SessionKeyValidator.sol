// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {
    IModule,
    IValidator,
    IModularAccount,
    MODULE_TYPE_VALIDATOR,
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_FALLBACK,
    VALIDATION_FAILED,
    ERC1271_FAILED
} from "./interfaces/IERC7579Module.sol";
import {SessionLib} from "./libraries/SessionLib.sol";

interface IAccountRegistry {
    function getRegistry() external view returns (address);
}

/// @title SessionKeyValidator
/// @notice ERC-7579 validator (type 1) for session keys, with ZKsync SSO's interface: the account creates a
/// session (`createSession(spec, proof)`), after which the session signer may send single `execute` calls
/// within the spec's call and transfer policies, value and parameter limits, fee limit and expiry.
///
/// userOp.signature (after the account strips the validator prefix) = abi.encode(bytes ecdsaSignature,
/// SessionSpec spec, uint48[] periodIds); periodIds[0] = fee period, [1] = value period of the matched
/// policy, [2 + i] = period of its i-th constraint. The nonce key must be uint192(uint160(spec.signer)).
/// The returned validation data carries the window in which the op is valid (expiry ∩ allowance periods).
contract SessionKeyValidator is IValidator, IERC165 {
    using SessionLib for SessionLib.UsageTracker;

    bytes4 private constant EXECUTE_SELECTOR = 0xe9ae5c53; // execute(bytes32,bytes)
    bytes1 private constant CALLTYPE_SINGLE = 0x00;
    bytes1 private constant EXECTYPE_DEFAULT = 0x00;
    bytes1 private constant EXECTYPE_TRY = 0x01;
    uint256 private constant MIN_SESSION_LIFETIME = 60;

    /// The session each signer was created for; a signer is never reused, on any account.
    mapping(address signer => bytes32 sessionHash) public sessionSigner;

    mapping(bytes32 sessionHash => SessionLib.SessionStorage) private _sessions;

    uint256[50] private __gap;

    event SessionCreated(address indexed account, bytes32 indexed sessionHash, SessionLib.SessionSpec sessionSpec);
    event SessionRevoked(address indexed account, bytes32 indexed sessionHash);

    // ------------------------------------------------------------------ module

    function onInstall(bytes calldata) external override {}

    /// `data` = abi.encode(bytes32[] sessionHashes): each must be an active session of the account.
    function onUninstall(bytes calldata data) external override {
        bytes32[] memory hashes = abi.decode(data, (bytes32[]));
        for (uint256 i = 0; i < hashes.length; ++i) {
            _revoke(hashes[i]);
        }
    }

    function isModuleType(uint256 moduleTypeId) external pure override returns (bool) {
        return moduleTypeId == MODULE_TYPE_VALIDATOR;
    }

    function isInitialized(address smartAccount) public view override returns (bool) {
        return IModularAccount(smartAccount).isModuleInstalled(MODULE_TYPE_VALIDATOR, address(this), "");
    }

    function supportsInterface(bytes4 interfaceId) external pure override returns (bool) {
        return interfaceId == type(IValidator).interfaceId || interfaceId == type(IModule).interfaceId
            || interfaceId == type(IERC165).interfaceId;
    }

    /// Sessions cannot sign ERC-1271 messages.
    function isValidSignatureWithSender(address, bytes32, bytes calldata) external pure override returns (bytes4) {
        return ERC1271_FAILED;
    }

    // ------------------------------------------------------------------ sessions

    /// @notice Called by the account. `proof` is the session signer's 65-byte ECDSA signature over
    /// keccak256(abi.encode(sessionHash, account)) (no EIP-191 prefix): a dapp proves it holds the key.
    function createSession(SessionLib.SessionSpec calldata sessionSpec, bytes calldata proof) external {
        address account = msg.sender;
        if (!isInitialized(account)) revert NotInitialized(account);
        bytes32 sessionHash = keccak256(abi.encode(sessionSpec));
        for (uint256 i = 0; i < sessionSpec.callPolicies.length; ++i) {
            address target = sessionSpec.callPolicies[i].target;
            bytes4 selector = sessionSpec.callPolicies[i].selector;
            if (_isBanned(account, target, selector)) revert SessionLib.CallPolicyBanned(target, selector);
        }
        address signer = sessionSpec.signer;
        if (signer == address(0)) revert SessionLib.ZeroSigner();
        address recovered = ECDSA.recoverCalldata(keccak256(abi.encode(sessionHash, account)), proof);
        if (recovered != signer) revert SessionLib.InvalidSigner(recovered, signer);
        if (sessionSigner[signer] != bytes32(0)) revert SessionLib.SignerAlreadyUsed(signer);
        if (sessionSpec.feeLimit.limitType == SessionLib.LimitType.Unlimited) revert SessionLib.UnlimitedFees();
        SessionLib.SessionStorage storage session = _sessions[sessionHash];
        if (session.status[account] != SessionLib.Status.NotInitialized) {
            revert SessionLib.SessionAlreadyExists(sessionHash);
        }
        if (sessionSpec.expiresAt < block.timestamp + MIN_SESSION_LIFETIME) {
            revert SessionLib.SessionExpiresTooSoon(sessionSpec.expiresAt);
        }
        session.status[account] = SessionLib.Status.Active;
        sessionSigner[signer] = sessionHash;
        emit SessionCreated(account, sessionHash, sessionSpec);
    }

    function revokeKey(bytes32 sessionHash) public {
        _revoke(sessionHash);
    }

    function revokeKeys(bytes32[] calldata sessionHashes) external {
        for (uint256 i = 0; i < sessionHashes.length; ++i) {
            _revoke(sessionHashes[i]);
        }
    }

    function sessionStatus(address account, bytes32 sessionHash) external view returns (SessionLib.Status) {
        return _sessions[sessionHash].status[account];
    }

    /// @notice What is left of every limit of `spec` for `account` now (current period for allowances).
    function sessionState(address account, SessionLib.SessionSpec calldata spec)
        external
        view
        returns (SessionLib.SessionState memory state)
    {
        SessionLib.SessionStorage storage session = _sessions[keccak256(abi.encode(spec))];
        state.status = session.status[account];
        state.feesRemaining = session.fee.remaining(spec.feeLimit, account);
        state.transferValue = _transferStates(session, spec.transferPolicies, account);
        state.callValue = _callValueStates(session, spec.callPolicies, account);
        state.callParams = _paramStates(session, spec.callPolicies, account);
    }

    function _transferStates(
        SessionLib.SessionStorage storage session,
        SessionLib.TransferSpec[] calldata policies,
        address account
    ) private view returns (SessionLib.LimitState[] memory states) {
        states = new SessionLib.LimitState[](policies.length);
        for (uint256 i = 0; i < policies.length; ++i) {
            states[i] = SessionLib.LimitState({
                remaining: session.transferValue[policies[i].target].remaining(policies[i].valueLimit, account),
                target: policies[i].target,
                selector: bytes4(0),
                index: 0
            });
        }
    }

    function _callValueStates(
        SessionLib.SessionStorage storage session,
        SessionLib.CallSpec[] calldata policies,
        address account
    ) private view returns (SessionLib.LimitState[] memory states) {
        states = new SessionLib.LimitState[](policies.length);
        for (uint256 i = 0; i < policies.length; ++i) {
            SessionLib.CallSpec calldata policy = policies[i];
            states[i] = SessionLib.LimitState({
                remaining: session.callValue[policy.target][policy.selector].remaining(policy.valueLimit, account),
                target: policy.target,
                selector: policy.selector,
                index: 0
            });
        }
    }

    /// One entry per constraint with a limit, in policy then constraint order.
    function _paramStates(
        SessionLib.SessionStorage storage session,
        SessionLib.CallSpec[] calldata policies,
        address account
    ) private view returns (SessionLib.LimitState[] memory states) {
        uint256 count;
        for (uint256 i = 0; i < policies.length; ++i) {
            for (uint256 j = 0; j < policies[i].constraints.length; ++j) {
                if (policies[i].constraints[j].limit.limitType != SessionLib.LimitType.Unlimited) ++count;
            }
        }
        states = new SessionLib.LimitState[](count);
        count = 0;
        for (uint256 i = 0; i < policies.length; ++i) {
            for (uint256 j = 0; j < policies[i].constraints.length; ++j) {
                SessionLib.Constraint calldata constraint = policies[i].constraints[j];
                if (constraint.limit.limitType == SessionLib.LimitType.Unlimited) continue;
                states[count++] = _paramState(session, policies[i], j, constraint, account);
            }
        }
    }

    function _paramState(
        SessionLib.SessionStorage storage session,
        SessionLib.CallSpec calldata policy,
        uint256 position,
        SessionLib.Constraint calldata constraint,
        address account
    ) private view returns (SessionLib.LimitState memory) {
        return SessionLib.LimitState({
            remaining: session.params[policy.target][policy.selector][position].remaining(constraint.limit, account),
            target: policy.target,
            selector: policy.selector,
            index: constraint.index
        });
    }

    // ------------------------------------------------------------------ validation

    /// @notice Called by the account with the session payload (validator prefix stripped). Charges the
    /// op's value, parameters and (without a paymaster) fee to the session's limits, reverting with the
    /// rule that fails; returns 1 for a bad session signature, else the op's validity window.
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash)
        external
        override
        returns (uint256)
    {
        (bytes memory signature, SessionLib.SessionSpec memory spec, uint48[] memory periodIds) =
            abi.decode(userOp.signature, (bytes, SessionLib.SessionSpec, uint48[]));
        if (spec.signer == address(0)) revert SessionLib.ZeroSigner();
        bytes32 sessionHash = keccak256(abi.encode(spec));
        address account = msg.sender;

        uint192 nonceKey = uint192(userOp.nonce >> 64);
        uint192 expectedKey = uint192(uint160(spec.signer));
        if (nonceKey != expectedKey) revert SessionLib.InvalidNonceKey(nonceKey, expectedKey);

        SessionLib.SessionStorage storage session = _sessions[sessionHash];
        if (session.status[account] != SessionLib.Status.Active) revert SessionLib.SessionNotActive();

        (address target, uint256 value, bytes calldata callData) = _singleCall(userOp.callData);

        SessionLib.TimeRange memory range = SessionLib.TimeRange({validAfter: 0, validUntil: spec.expiresAt});
        if (callData.length >= 4) {
            _checkCall(session, spec, target, value, callData, periodIds, account, range);
        } else {
            if (callData.length != 0) revert SessionLib.InvalidDataLength(callData.length, 0);
            _checkTransfer(session, spec, target, value, periodIds, account, range);
        }

        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecover(userOpHash, signature);
        if (error != ECDSA.RecoverError.NoError || recovered != spec.signer) return VALIDATION_FAILED;

        if (userOp.paymasterAndData.length == 0) {
            session.fee.use(spec.feeLimit, _maxFee(userOp), periodIds[0], account, range);
        }

        // A window ending at timestamp 0 (an allowance of period 1 used with period id 0) would be
        // packed as validUntil 0, which the EntryPoint reads as "no expiry": refuse it instead.
        if (range.validUntil == 0) revert SessionLib.EmptyTimeRange();
        return (uint256(range.validUntil) << 160) | (uint256(range.validAfter) << 208);
    }

    /// The most the op can cost the account: min(maxFeePerGas, maxPriorityFeePerGas + basefee) times
    /// preVerificationGas + verificationGasLimit + callGasLimit.
    function _maxFee(PackedUserOperation calldata userOp) private view returns (uint256) {
        uint256 maxFeePerGas = uint128(uint256(userOp.gasFees));
        uint256 gasPrice = uint128(uint256(userOp.gasFees) >> 128) + block.basefee;
        if (maxFeePerGas < gasPrice) gasPrice = maxFeePerGas;
        uint256 accountGasLimits = uint256(userOp.accountGasLimits);
        return gasPrice * (userOp.preVerificationGas + uint128(accountGasLimits >> 128) + uint128(accountGasLimits));
    }

    /// The (target, value, callData) of `execute(bytes32 mode, bytes executionData)` in single mode with
    /// the canonical encoding (offset 0x40); anything else is refused.
    function _singleCall(bytes calldata accountCall)
        private
        pure
        returns (address target, uint256 value, bytes calldata callData)
    {
        bytes4 selector = bytes4(accountCall[:4]);
        bytes1 callType = accountCall[4];
        bytes1 execType = accountCall[5];
        if (callType != CALLTYPE_SINGLE) revert SessionLib.InvalidCallType(callType, CALLTYPE_SINGLE);
        if (execType != EXECTYPE_DEFAULT && execType != EXECTYPE_TRY) revert SessionLib.InvalidExecType(execType);
        if (selector != EXECUTE_SELECTOR) revert SessionLib.InvalidTopLevelSelector(selector, EXECUTE_SELECTOR);
        if (uint256(bytes32(accountCall[36:68])) != 0x40) revert SessionLib.InvalidData();
        uint256 length = uint256(bytes32(accountCall[68:100]));
        bytes calldata execution = accountCall[100:100 + length];
        if (execution.length < 52) {
            assembly ("memory-safe") {
                mstore(0x00, 0xba597e7e) // DecodingError(), as the account raises it
                revert(0x1c, 0x04)
            }
        }
        target = address(bytes20(execution[:20]));
        value = uint256(bytes32(execution[20:52]));
        callData = execution[52:];
    }

    function _checkCall(
        SessionLib.SessionStorage storage session,
        SessionLib.SessionSpec memory spec,
        address target,
        uint256 value,
        bytes calldata callData,
        uint48[] memory periodIds,
        address account,
        SessionLib.TimeRange memory range
    ) private {
        bytes4 selector = bytes4(callData[:4]);
        uint256 found = type(uint256).max;
        for (uint256 i = 0; i < spec.callPolicies.length; ++i) {
            if (spec.callPolicies[i].target == target && spec.callPolicies[i].selector == selector) {
                found = i;
                break;
            }
        }
        if (found == type(uint256).max) revert SessionLib.CallPolicyViolated(target, selector);
        SessionLib.CallSpec memory policy = spec.callPolicies[found];
        if (value > policy.maxValuePerUse) revert SessionLib.MaxValueExceeded(value, policy.maxValuePerUse);
        session.callValue[target][selector].use(policy.valueLimit, value, periodIds[1], account, range);
        for (uint256 i = 0; i < policy.constraints.length; ++i) {
            SessionLib.Constraint memory constraint = policy.constraints[i];
            uint256 offset = 4 + 32 * uint256(constraint.index);
            if (callData.length < offset + 32) revert SessionLib.InvalidDataLength(callData.length, offset + 32);
            bytes32 param = bytes32(callData[offset:offset + 32]);
            if (!SessionLib.satisfies(constraint.condition, param, constraint.refValue)) {
                revert SessionLib.ConditionViolated(param, constraint.refValue, uint8(constraint.condition));
            }
            session.params[target][selector][i].use(constraint.limit, uint256(param), periodIds[2 + i], account, range);
        }
    }

    function _checkTransfer(
        SessionLib.SessionStorage storage session,
        SessionLib.SessionSpec memory spec,
        address target,
        uint256 value,
        uint48[] memory periodIds,
        address account,
        SessionLib.TimeRange memory range
    ) private {
        for (uint256 i = 0; i < spec.transferPolicies.length; ++i) {
            SessionLib.TransferSpec memory policy = spec.transferPolicies[i];
            if (policy.target != target) continue;
            if (value > policy.maxValuePerUse) revert SessionLib.MaxValueExceeded(value, policy.maxValuePerUse);
            session.transferValue[target].use(policy.valueLimit, value, periodIds[1], account, range);
            return;
        }
        revert SessionLib.TransferPolicyViolated(target);
    }

    // ------------------------------------------------------------------ internals

    function _revoke(bytes32 sessionHash) private {
        SessionLib.SessionStorage storage session = _sessions[sessionHash];
        if (session.status[msg.sender] != SessionLib.Status.Active) revert SessionLib.SessionNotActive();
        session.status[msg.sender] = SessionLib.Status.Closed;
        emit SessionRevoked(msg.sender, sessionHash);
    }

    /// A session may not call this validator, the account, the account's modules (validators, executors,
    /// the fallback handler of that selector) or its ERC-7484 registry.
    function _isBanned(address account, address target, bytes4 selector) private view returns (bool) {
        if (target == address(this) || target == account) return true;
        IModularAccount msa = IModularAccount(account);
        if (msa.isModuleInstalled(MODULE_TYPE_VALIDATOR, target, "")) return true;
        if (msa.isModuleInstalled(MODULE_TYPE_EXECUTOR, target, "")) return true;
        if (msa.isModuleInstalled(MODULE_TYPE_FALLBACK, target, abi.encode(selector))) return true;
        return target == IAccountRegistry(account).getRegistry();
    }
}
