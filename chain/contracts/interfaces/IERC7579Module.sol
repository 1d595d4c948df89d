// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";

uint256 constant MODULE_TYPE_VALIDATOR = 1;
uint256 constant MODULE_TYPE_EXECUTOR = 2;
uint256 constant MODULE_TYPE_FALLBACK = 3;

uint256 constant VALIDATION_SUCCESS = 0;
uint256 constant VALIDATION_FAILED = 1;

bytes4 constant ERC1271_MAGIC = 0x1626ba7e;
bytes4 constant ERC1271_FAILED = 0xffffffff;

/// @notice ERC-7579 module: every module type implements this.
interface IModule {
    error AlreadyInitialized(address smartAccount);
    error NotInitialized(address smartAccount);

    /// Called by the account when the module is installed, with the account as msg.sender.
    function onInstall(bytes calldata data) external;

    /// Called by the account when the module is removed, with the account as msg.sender.
    function onUninstall(bytes calldata data) external;

    function isModuleType(uint256 moduleTypeId) external view returns (bool);

    function isInitialized(address smartAccount) external view returns (bool);
}

/// @notice ERC-7579 validator (module type 1).
interface IValidator is IModule {
    error InvalidTargetAddress(address target);

    /// Returns 0 for a valid signature, 1 otherwise (optionally with a packed time range).
    /// userOp.signature is the account's signature with the 20-byte validator prefix removed.
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash) external returns (uint256);

    /// ERC-1271 check of `hash` (already bound to the account by the account) for `sender`.
    function isValidSignatureWithSender(address sender, bytes32 hash, bytes calldata data)
        external
        view
        returns (bytes4);
}

/// @notice ERC-7579 executor (module type 2): calls back `executeFromExecutor` on the account.
interface IExecutor is IModule {}

/// @notice The account functions that modules call back.
interface IModularAccount {
    function isModuleInstalled(uint256 moduleTypeId, address module, bytes calldata additionalContext)
        external
        view
        returns (bool);

    function executeFromExecutor(bytes32 mode, bytes calldata executionCalldata)
        external
        payable
        returns (bytes[] memory returnData);
}
