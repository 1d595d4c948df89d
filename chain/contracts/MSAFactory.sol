// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

interface IInitializableAccount {
    function initializeAccount(address[] calldata modules, bytes[] calldata data) external payable;
}

/// @title MSAFactory
/// @notice Deploys ModularSmartAccount instances as ERC-1167 minimal proxies of one implementation,
/// with CREATE2, and initialises them in the same call.
///
/// The CREATE2 salt binds the caller, the caller's salt and the exact initData, so nobody can deploy a
/// different set-up (e.g. another passkey) at an address someone else expects. Through ERC-4337 initCode
/// the caller is the EntryPoint's SenderCreator.
contract MSAFactory {
    address public immutable ACCOUNT_IMPLEMENTATION;

    /// Same signature as the reference factory's event.
    event AccountCreated(address indexed account, address indexed deployer);
    /// The account and the caller's salt, for indexers.
    event AccountDeployed(address indexed account, bytes32 indexed salt);

    error InvalidInitData();

    constructor(address accountImplementation) {
        ACCOUNT_IMPLEMENTATION = accountImplementation;
    }

    /// @notice Deploys (or returns, if already there) the account for (msg.sender, salt, initData).
    /// @param initData calldata of `initializeAccount(address[],bytes[])` for the new account.
    function deployAccount(bytes32 salt, bytes calldata initData) external returns (address account) {
        if (initData.length < 4 || bytes4(initData[:4]) != IInitializableAccount.initializeAccount.selector) {
            revert InvalidInitData();
        }
        bytes32 effectiveSalt = _salt(msg.sender, salt, initData);
        account = Clones.predictDeterministicAddress(ACCOUNT_IMPLEMENTATION, effectiveSalt);
        if (account.code.length != 0) return account;
        Clones.cloneDeterministic(ACCOUNT_IMPLEMENTATION, effectiveSalt);
        (bool success, bytes memory ret) = account.call(initData);
        if (!success) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        emit AccountCreated(account, msg.sender);
        emit AccountDeployed(account, salt);
    }

    /// @notice The address `deployAccount(salt, initData)` called by `deployer` deploys to.
    function predictAccountAddress(address deployer, bytes32 salt, bytes calldata initData)
        external
        view
        returns (address)
    {
        return Clones.predictDeterministicAddress(ACCOUNT_IMPLEMENTATION, _salt(deployer, salt, initData));
    }

    function _salt(address deployer, bytes32 salt, bytes calldata initData) private pure returns (bytes32) {
        return keccak256(abi.encode(deployer, salt, keccak256(initData)));
    }
}
