// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccount} from "@account-abstraction/contracts/interfaces/IAccount.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ERC7739Utils} from "@openzeppelin/contracts/utils/cryptography/draft-ERC7739Utils.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ERC7579Utils} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {
    IModule,
    IValidator,
    MODULE_TYPE_VALIDATOR,
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_FALLBACK,
    VALIDATION_FAILED,
    ERC1271_MAGIC,
    ERC1271_FAILED
} from "./interfaces/IERC7579Module.sol";
import {IERC7484Registry} from "./interfaces/IERC7484Registry.sol";

/// @title ModularSmartAccount
/// @notice ERC-4337 (EntryPoint v0.8) account with ERC-7579 validator, executor and fallback modules.
/// Accounts are AccountProxy beacon proxies (deployed by MSAFactory) behind one UpgradeableBeacon
/// that holds this implementation; upgrading the beacon upgrades every account. Storage: the ERC-7201
/// namespace below and OpenZeppelin Initializable's, nothing in plain slots.
///
/// - `userOp.signature` = validator address (20 bytes) ‖ validator payload; the named validator must be
///   installed and receives the op with the prefix stripped.
/// - `execute(mode, data)`: call type 0x00 single (target ‖ value ‖ callData), 0x01 batch
///   (abi.encode(Execution[])), 0xff delegatecall (target ‖ callData); exec type 0x00 revert, 0x01 try.
/// - ERC-1271 with ERC-7739 nested typed data (TypedDataSign / PersonalSign) and ERC-6492 unwrapping:
///   see {isValidSignature}; the signed digest is bound to this account, so a signature for one account
///   (or app) is useless for another.
contract ModularSmartAccount is IAccount, Initializable, EIP712 {
    using EnumerableSet for EnumerableSet.AddressSet;

    struct FallbackHandler {
        address handler;
        bytes1 calltype;
    }

    /// @custom:storage-location erc7201:modulemanager.storage.msa
    struct ModuleStorage {
        EnumerableSet.AddressSet validators;
        EnumerableSet.AddressSet executors;
        mapping(bytes4 selector => FallbackHandler) fallbacks;
    }

    // keccak256(abi.encode(uint256(keccak256("modulemanager.storage.msa")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant MODULE_STORAGE = 0xe3a55571e8f241b58442871487cc151a8cb048bb4ad24e833467f724ec89a900;

    // keccak256(abi.encode(uint256(keccak256("passkeyportal.msa.registry")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant REGISTRY_STORAGE = 0x12994e8d0293cfc080a9637c05c1f6f4479be61bc80f398e85afe181af50bb00;

    bytes32 private constant PERSONAL_SIGN_TYPEHASH = keccak256("PersonalSign(bytes prefixed)");

    bytes1 private constant CALLTYPE_SINGLE = 0x00;
    bytes1 private constant CALLTYPE_BATCH = 0x01;
    bytes1 private constant CALLTYPE_STATIC = 0xfe;
    bytes1 private constant CALLTYPE_DELEGATECALL = 0xff;
    bytes1 private constant EXECTYPE_DEFAULT = 0x00;
    bytes1 private constant EXECTYPE_TRY = 0x01;

    string public constant accountId = "passkey-portal.msa.v1";

    address private immutable _ENTRY_POINT;

    event ModuleInstalled(uint256 indexed moduleTypeId, address indexed module);
    event ModuleUninstalled(uint256 indexed moduleTypeId, address indexed module);
    event ModuleUnlinked(uint256 indexed moduleTypeId, address indexed module, bytes error);
    event TryExecuteUnsuccessful(uint256 batchExecutionIndex, bytes result);
    event ERC7484RegistryConfigured(address indexed registry);

    error AccountAccessUnauthorized();
    error AlreadyInstalled(address module);
    error NotInstalled(address module);
    error CannotRemoveLastValidator();
    error InvalidModule(address module);
    error MismatchModuleTypeId(uint256 moduleTypeId);
    error UnsupportedModuleType(uint256 moduleTypeId);
    error InvalidCallType(bytes1 calltype);
    error UnsupportedCallType(bytes1 callType);
    error UnsupportedExecType(bytes1 execType);
    error SelectorAlreadyUsed(bytes4 selector);
    error NoFallbackHandler(bytes4 selector);
    error NotEnoughData();
    error DecodingError();
    error NoValidator();
    error ForbiddenFallbackSelector(bytes4 selector);

    modifier onlyEntryPoint() {
        if (msg.sender != _ENTRY_POINT) revert AccountAccessUnauthorized();
        _;
    }

    modifier onlyEntryPointOrSelf() {
        if (msg.sender != _ENTRY_POINT && msg.sender != address(this)) revert AccountAccessUnauthorized();
        _;
    }

    constructor(address entryPoint_) EIP712("PasskeyPortalAccount", "1") {
        _ENTRY_POINT = entryPoint_;
        _disableInitializers();
    }

    // ---------------------------------------------------------------- ERC-4337

    function entryPoint() external view returns (address) {
        return _ENTRY_POINT;
    }

    function ENTRY_POINT_V08() external view returns (address) {
        return _ENTRY_POINT;
    }

    /// @inheritdoc IAccount
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, uint256 missingAccountFunds)
        external
        onlyEntryPoint
        returns (uint256 validationData)
    {
        bytes calldata signature = userOp.signature;
        address validator;
        assembly ("memory-safe") {
            if iszero(lt(signature.length, 20)) { validator := shr(96, calldataload(signature.offset)) }
        }
        if (!_modules().validators.contains(validator)) {
            validationData = VALIDATION_FAILED;
        } else {
            validationData = _validateWith(validator, userOp, signature, userOpHash);
        }
        if (missingAccountFunds != 0) {
            assembly ("memory-safe") {
                pop(call(gas(), caller(), missingAccountFunds, 0, 0, 0, 0))
            }
        }
    }

    /// Calls `validator.validateUserOp(userOp with signature[20:], userOpHash)`.
    /// The EntryPoint encodes the op canonically (signature is the last tail), so the call data is built
    /// by copying the op up to the signature and appending the stripped signature; any other layout
    /// takes the plain (copying) path.
    function _validateWith(
        address validator,
        PackedUserOperation calldata userOp,
        bytes calldata signature,
        bytes32 userOpHash
    ) private returns (uint256 result) {
        bool lastTail;
        assembly ("memory-safe") {
            let sigWord := sub(sub(signature.offset, 32), userOp) // signature's length word, from the tuple
            // initCode (head word 2), callData (3) and paymasterAndData (7) must end before it.
            lastTail := 1
            for { let i := 0 } lt(i, 3) { i := add(i, 1) } {
                let head := add(userOp, mul(0x20, byte(i, 0x0203070000000000000000000000000000000000000000000000000000000000)))
                let offset := calldataload(head)
                let end := add(add(offset, 0x20), calldataload(add(userOp, offset)))
                if gt(end, sigWord) { lastTail := 0 }
            }
            if lastTail {
                let ptr := mload(0x40)
                mstore(ptr, shl(224, 0x97003203)) // validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)
                mstore(add(ptr, 0x04), 0x40)
                mstore(add(ptr, 0x24), userOpHash)
                let dst := add(ptr, 0x44)
                calldatacopy(dst, userOp, sigWord)
                let length := sub(signature.length, 20)
                mstore(add(dst, sigWord), length)
                calldatacopy(add(add(dst, sigWord), 0x20), add(signature.offset, 20), length)
                mstore(add(add(add(dst, sigWord), 0x20), length), 0) // zero padding
                let size := add(add(0x44, sigWord), add(0x20, and(add(length, 31), not(31))))
                if iszero(call(gas(), validator, 0, ptr, size, 0x00, 0x20)) {
                    returndatacopy(ptr, 0, returndatasize())
                    revert(ptr, returndatasize())
                }
                if lt(returndatasize(), 0x20) { revert(0, 0) }
                result := mload(0x00)
            }
        }
        if (!lastTail) {
            PackedUserOperation memory op = userOp;
            op.signature = signature[20:];
            result = IValidator(validator).validateUserOp(op, userOpHash);
        }
    }

    // ---------------------------------------------------------------- ERC-7579 execution

    function execute(bytes32 mode, bytes calldata executionCalldata) external payable onlyEntryPointOrSelf {
        if (mode[0] == CALLTYPE_SINGLE && mode[1] == EXECTYPE_DEFAULT) {
            // The common case, without keeping the result (execute returns nothing): one call that must succeed.
            if (executionCalldata.length < 52) revert DecodingError();
            assembly ("memory-safe") {
                let target := shr(96, calldataload(executionCalldata.offset))
                let value := calldataload(add(executionCalldata.offset, 20))
                let length := sub(executionCalldata.length, 52)
                let ptr := mload(0x40)
                calldatacopy(ptr, add(executionCalldata.offset, 52), length)
                if iszero(call(gas(), target, value, ptr, length, 0x00, 0x00)) {
                    returndatacopy(ptr, 0x00, returndatasize())
                    revert(ptr, returndatasize())
                }
            }
            return;
        }
        _execute(mode, executionCalldata);
    }

    function executeFromExecutor(bytes32 mode, bytes calldata executionCalldata)
        external
        payable
        returns (bytes[] memory returnData)
    {
        if (!_modules().executors.contains(msg.sender)) revert InvalidModule(msg.sender);
        _checkRegistry(msg.sender, MODULE_TYPE_EXECUTOR);
        return _execute(mode, executionCalldata);
    }

    function supportsExecutionMode(bytes32 mode) external pure returns (bool) {
        bytes1 callType = mode[0];
        bytes1 execType = mode[1];
        return (callType == CALLTYPE_SINGLE || callType == CALLTYPE_BATCH || callType == CALLTYPE_DELEGATECALL)
            && (execType == EXECTYPE_DEFAULT || execType == EXECTYPE_TRY);
    }

    function _execute(bytes32 mode, bytes calldata data) private returns (bytes[] memory results) {
        bytes1 callType = mode[0];
        bytes1 execType = mode[1];
        if (execType != EXECTYPE_DEFAULT && execType != EXECTYPE_TRY) revert UnsupportedExecType(execType);
        bool tryMode = execType == EXECTYPE_TRY;
        if (callType == CALLTYPE_SINGLE) {
            if (data.length < 52) revert DecodingError();
            results = new bytes[](1);
            results[0] =
                _call(0, address(bytes20(data[:20])), uint256(bytes32(data[20:52])), data[52:], tryMode);
        } else if (callType == CALLTYPE_BATCH) {
            Execution[] calldata batch = ERC7579Utils.decodeBatch(data);
            results = new bytes[](batch.length);
            for (uint256 i = 0; i < batch.length; ++i) {
                results[i] = _call(i, batch[i].target, batch[i].value, batch[i].callData, tryMode);
            }
        } else if (callType == CALLTYPE_DELEGATECALL) {
            if (data.length < 20) revert DecodingError();
            results = new bytes[](1);
            (bool success, bytes memory ret) = address(bytes20(data[:20])).delegatecall(data[20:]);
            results[0] = _handleResult(0, success, ret, tryMode);
        } else {
            revert UnsupportedCallType(callType);
        }
    }

    function _call(uint256 index, address target, uint256 value, bytes calldata callData, bool tryMode)
        private
        returns (bytes memory)
    {
        (bool success, bytes memory ret) = target.call{value: value}(callData);
        return _handleResult(index, success, ret, tryMode);
    }

    function _handleResult(uint256 index, bool success, bytes memory ret, bool tryMode)
        private
        returns (bytes memory)
    {
        if (!success) {
            if (!tryMode) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
            emit TryExecuteUnsuccessful(index, ret);
        }
        return ret;
    }

    // ---------------------------------------------------------------- ERC-7579 modules

    /// @notice One-time set-up of a fresh account (the factory calls it in the deployment transaction).
    /// Each module is installed as every type (1, 2, 3) it declares, with its data entry.
    function initializeAccount(address[] calldata modules, bytes[] calldata data) external payable initializer {
        for (uint256 i = 0; i < modules.length; ++i) {
            for (uint256 moduleType = MODULE_TYPE_VALIDATOR; moduleType <= MODULE_TYPE_FALLBACK; ++moduleType) {
                if (IModule(modules[i]).isModuleType(moduleType)) {
                    _install(moduleType, modules[i], data[i]);
                }
            }
        }
        if (_modules().validators.length() == 0) revert NoValidator();
    }

    function installModule(uint256 moduleTypeId, address module, bytes calldata initData)
        external
        payable
        onlyEntryPointOrSelf
    {
        _checkRegistry(module, moduleTypeId);
        if (!IModule(module).isModuleType(moduleTypeId)) revert MismatchModuleTypeId(moduleTypeId);
        _install(moduleTypeId, module, initData);
    }

    function uninstallModule(uint256 moduleTypeId, address module, bytes calldata deInitData)
        external
        payable
        onlyEntryPointOrSelf
    {
        bytes calldata moduleData = _unregister(moduleTypeId, module, deInitData);
        IModule(module).onUninstall(moduleData);
        emit ModuleUninstalled(moduleTypeId, module);
    }

    /// @notice Like uninstallModule, but a module whose onUninstall reverts is removed anyway.
    function unlinkModule(uint256 moduleTypeId, address module, bytes calldata deInitData)
        external
        payable
        onlyEntryPointOrSelf
    {
        bytes calldata moduleData = _unregister(moduleTypeId, module, deInitData);
        (bool success, bytes memory ret) =
            module.call{gas: gasleft() / 2}(abi.encodeCall(IModule.onUninstall, (moduleData)));
        if (!success) {
            if (ret.length > 256) {
                assembly ("memory-safe") {
                    mstore(ret, 256)
                }
            }
            emit ModuleUnlinked(moduleTypeId, module, ret);
        }
        emit ModuleUninstalled(moduleTypeId, module);
    }

    function isModuleInstalled(uint256 moduleTypeId, address module, bytes calldata additionalContext)
        external
        view
        returns (bool)
    {
        ModuleStorage storage $ = _modules();
        if (moduleTypeId == MODULE_TYPE_VALIDATOR) return $.validators.contains(module);
        if (moduleTypeId == MODULE_TYPE_EXECUTOR) return $.executors.contains(module);
        if (moduleTypeId == MODULE_TYPE_FALLBACK) {
            bytes4 selector = abi.decode(additionalContext, (bytes4));
            return $.fallbacks[selector].handler == module;
        }
        return false;
    }

    function supportsModule(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId >= MODULE_TYPE_VALIDATOR && moduleTypeId <= MODULE_TYPE_FALLBACK;
    }

    function getActiveFallbackHandler(bytes4 functionSig) external view returns (FallbackHandler memory) {
        return _modules().fallbacks[functionSig];
    }

    function getValidators() external view returns (address[] memory) {
        return _modules().validators.values();
    }

    function getExecutors() external view returns (address[] memory) {
        return _modules().executors.values();
    }

    // ---------------------------------------------------------------- ERC-7484 registry

    /// @notice Use `registry` (zero: none) to vet modules on install, executor calls and fallback calls;
    /// the previous registry's attesters are cleared. Modules read it with {getRegistry} (a session may not
    /// call it).
    function setRegistry(IERC7484Registry registry, address[] calldata attesters, uint8 threshold)
        external
        onlyEntryPointOrSelf
    {
        IERC7484Registry previous = getRegistry();
        if (address(previous) != address(0)) previous.trustAttesters(0, new address[](0));
        assembly ("memory-safe") {
            sstore(REGISTRY_STORAGE, registry)
        }
        if (address(registry) != address(0)) registry.trustAttesters(threshold, attesters);
        emit ERC7484RegistryConfigured(address(registry));
    }

    function getRegistry() public view returns (IERC7484Registry registry) {
        assembly ("memory-safe") {
            registry := sload(REGISTRY_STORAGE)
        }
    }

    function _checkRegistry(address module, uint256 moduleTypeId) private view {
        IERC7484Registry registry = getRegistry();
        if (address(registry) != address(0)) registry.check(module, moduleTypeId);
    }

    function _install(uint256 moduleTypeId, address module, bytes calldata initData) private {
        ModuleStorage storage $ = _modules();
        bytes calldata moduleData = initData;
        if (moduleTypeId == MODULE_TYPE_VALIDATOR) {
            if (!$.validators.add(module)) revert AlreadyInstalled(module);
        } else if (moduleTypeId == MODULE_TYPE_EXECUTOR) {
            if (!$.executors.add(module)) revert AlreadyInstalled(module);
        } else if (moduleTypeId == MODULE_TYPE_FALLBACK) {
            if (initData.length < 5) revert DecodingError();
            bytes4 selector = bytes4(initData[:4]);
            bytes1 calltype = initData[4];
            // A handler for a module's own entry points would let anyone call them with the account as
            // msg.sender through the account (e.g. install a key in a validator).
            if (selector == IModule.onInstall.selector || selector == IModule.onUninstall.selector) {
                revert ForbiddenFallbackSelector(selector);
            }
            if (calltype != CALLTYPE_SINGLE && calltype != CALLTYPE_STATIC) revert InvalidCallType(calltype);
            if ($.fallbacks[selector].handler != address(0)) revert SelectorAlreadyUsed(selector);
            $.fallbacks[selector] = FallbackHandler(module, calltype);
            moduleData = initData[5:];
        } else {
            revert UnsupportedModuleType(moduleTypeId);
        }
        IModule(module).onInstall(moduleData);
        emit ModuleInstalled(moduleTypeId, module);
    }

    function _unregister(uint256 moduleTypeId, address module, bytes calldata deInitData)
        private
        returns (bytes calldata moduleData)
    {
        ModuleStorage storage $ = _modules();
        moduleData = deInitData;
        if (moduleTypeId == MODULE_TYPE_VALIDATOR) {
            if (!$.validators.remove(module)) revert NotInstalled(module);
            if ($.validators.length() == 0) revert CannotRemoveLastValidator();
        } else if (moduleTypeId == MODULE_TYPE_EXECUTOR) {
            if (!$.executors.remove(module)) revert NotInstalled(module);
        } else if (moduleTypeId == MODULE_TYPE_FALLBACK) {
            if (deInitData.length < 4) revert DecodingError();
            bytes4 selector = bytes4(deInitData[:4]);
            address handler = $.fallbacks[selector].handler;
            if (handler == address(0)) revert NoFallbackHandler(selector);
            if (handler != module) revert NotInstalled(module);
            delete $.fallbacks[selector];
            moduleData = deInitData[4:];
        } else {
            revert UnsupportedModuleType(moduleTypeId);
        }
    }

    function _modules() private pure returns (ModuleStorage storage $) {
        assembly ("memory-safe") {
            $.slot := MODULE_STORAGE
        }
    }

    // ---------------------------------------------------------------- ERC-1271 (ERC-7739, ERC-6492)

    // isValidSignature(ERC7739_PROBE, "") answers ERC7739_SUPPORTED: this account nests signatures.
    bytes32 private constant ERC7739_PROBE = 0x7739773977397739773977397739773977397739773977397739773977397739;
    bytes4 private constant ERC7739_SUPPORTED = 0x77390001;
    // The last 32 bytes of an ERC-6492 signature (one made before the account was deployed).
    bytes32 private constant ERC6492_SUFFIX = 0x6492649264926492649264926492649264926492649264926492649264926492;

    /// @notice ERC-1271, with ERC-7739's nested typed data (as ZKsync SSO's account, on solady's ERC1271):
    /// 1. `hash` = 0x7739…7739 with empty `data` answers 0x77390001 (ERC-7739 detection).
    /// 2. An ERC-6492 wrapper (`abi.encode(factory, factoryCalldata, signature) ‖ 0x6492…6492`) is
    ///    unwrapped to its signature; nothing is deployed (a malformed wrapper fails).
    /// 3. TypedDataSign: when `data` ends with `APP_DOMAIN_SEPARATOR ‖ contents ‖ contentsDescription ‖
    ///    uint16(contentsDescription.length)` and `hash` = keccak256(0x1901 ‖ APP_DOMAIN_SEPARATOR ‖
    ///    contents), the validator must have signed the app's typed data hash of
    ///    `TypedDataSign(contents, this account's name, version, chainId, address, salt 0)`; a contents
    ///    name that ERC-7739 forbids fails.
    /// 4. PersonalSign otherwise: the validator must have signed {replaySafeHash}(hash).
    /// The signature left is `validator (20 bytes) ‖ payload`; a validator that is not installed reverts
    /// `InvalidModule`. Either way the signed digest names this account and chain (and, for typed data,
    /// the app's domain), so a signature is useless for another account or app.
    /// (SSO's off-chain "RPC" path, which also accepts a signature of the raw `hash` in an eth_call, is
    /// left out: it would accept, off chain, a signature bound to no account.)
    function isValidSignature(bytes32 hash, bytes calldata data) external view returns (bytes4) {
        if (data.length == 0 && hash == ERC7739_PROBE) return ERC7739_SUPPORTED;
        (bool ok, bytes32 digest, bytes calldata signature) = _nestedDigest(hash, _unwrapERC6492(data));
        if (!ok || signature.length < 20) return ERC1271_FAILED;
        address validator = address(bytes20(signature[:20]));
        if (!_modules().validators.contains(validator)) revert InvalidModule(validator);
        bytes4 result = IValidator(validator).isValidSignatureWithSender(msg.sender, digest, signature[20:]);
        return result == ERC1271_MAGIC ? ERC1271_MAGIC : ERC1271_FAILED;
    }

    /// @notice The digest a validator must have signed for `isValidSignature(hash, ...)` of a
    /// personal message (ERC-7739 PersonalSign: EIP-712 `PersonalSign(bytes prefixed)` under this
    /// account's domain, `prefixed` being `hash`).
    function replaySafeHash(bytes32 hash) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(PERSONAL_SIGN_TYPEHASH, hash)));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// The inner signature of an ERC-6492 wrapper (bounds-checked: a malformed one gives empty bytes),
    /// or `data` itself.
    function _unwrapERC6492(bytes calldata data) private pure returns (bytes calldata) {
        uint256 length = data.length;
        if (length < 32 || bytes32(data[length - 32:]) != ERC6492_SUFFIX) return data;
        bytes calldata wrapper = data[:length - 32];
        if (wrapper.length < 96) return data[:0];
        uint256 offset = uint256(bytes32(wrapper[64:96]));
        if (offset > wrapper.length - 32) return data[:0];
        uint256 size = uint256(bytes32(wrapper[offset:offset + 32]));
        if (size > wrapper.length - offset - 32) return data[:0];
        return wrapper[offset + 32:offset + 32 + size];
    }

    /// ERC-7739: the digest the signature must sign, and the signature without the typed-data trailer.
    function _nestedDigest(bytes32 hash, bytes calldata data)
        private
        view
        returns (bool ok, bytes32 digest, bytes calldata signature)
    {
        (bytes calldata inner, bytes32 appSeparator, bytes32 contents, string calldata description) =
            ERC7739Utils.decodeTypedDataSig(data);
        if (bytes(description).length == 0 || MessageHashUtils.toTypedDataHash(appSeparator, contents) != hash) {
            return (true, replaySafeHash(hash), data);
        }
        (string calldata name, string calldata contentsType) = ERC7739Utils.decodeContentsDescr(description);
        // ERC-7739 also forbids a contents name that starts with a lowercase letter.
        if (bytes(name).length == 0 || (bytes(name)[0] >= "a" && bytes(name)[0] <= "z")) {
            return (false, bytes32(0), inner);
        }
        bytes memory domain = abi.encode(
            keccak256(bytes(_EIP712Name())), keccak256(bytes(_EIP712Version())), block.chainid, address(this), bytes32(0)
        );
        bytes32 structHash = ERC7739Utils.typedDataSignStructHash(name, contentsType, contents, domain);
        return (true, MessageHashUtils.toTypedDataHash(appSeparator, structHash), inner);
    }

    // ---------------------------------------------------------------- fallback

    receive() external payable {}

    fallback() external payable {
        if (msg.data.length < 4) revert NotEnoughData();
        FallbackHandler memory entry = _modules().fallbacks[msg.sig];
        if (entry.handler == address(0)) {
            // ERC-721 / ERC-1155 receiver hooks: accept tokens when no handler is installed.
            if (msg.sig == 0x150b7a02 || msg.sig == 0xf23a6e61 || msg.sig == 0xbc197c81) {
                bytes4 sig = msg.sig;
                assembly ("memory-safe") {
                    mstore(0x00, sig)
                    return(0x00, 0x20)
                }
            }
            revert NoFallbackHandler(msg.sig);
        }
        _checkRegistry(entry.handler, MODULE_TYPE_FALLBACK);
        bytes memory forwarded = abi.encodePacked(msg.data, msg.sender);
        bool success;
        bytes memory ret;
        if (entry.calltype == CALLTYPE_STATIC) {
            (success, ret) = entry.handler.staticcall(forwarded);
        } else {
            (success, ret) = entry.handler.call(forwarded);
        }
        assembly ("memory-safe") {
            if iszero(success) { revert(add(ret, 0x20), mload(ret)) }
            return(add(ret, 0x20), mload(ret))
        }
    }
}
