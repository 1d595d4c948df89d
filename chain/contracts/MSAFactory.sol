// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccountProxy} from "./AccountProxy.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";

interface IInitializableAccount {
    function initializeAccount(address[] calldata modules, bytes[] calldata data) external payable;
}

/// @title MSAFactory
/// @notice Deploys ModularSmartAccount instances as beacon proxies (AccountProxy, with OpenZeppelin BeaconProxy's
/// interface) of `BEACON`, with CREATE2, initialised in the proxy's constructor.
///
/// The address depends on the salt and the exact initData (part of the proxy's init code), and on nothing
/// else: not on who calls. Whoever deploys (the portal's relayer, whatever its key, or the EntryPoint's
/// SenderCreator through initCode, or anyone else) gets the same account with the same set-up, so the
/// address of an account not yet deployed survives a change of relayer key, and nobody can deploy another
/// set-up (e.g. another passkey) at an address someone else expects.
contract MSAFactory {
    address public immutable BEACON;

    /// Same signature as the reference factory's event.
    event AccountCreated(address indexed account, address indexed deployer);
    /// The account and the caller's salt, for indexers.
    event AccountDeployed(address indexed account, bytes32 indexed salt);

    error InvalidInitData();

    constructor(address beacon) {
        BEACON = beacon;
    }

    /// @notice Deploys (or returns, if already there) the account for (salt, initData).
    /// @param initData calldata of `initializeAccount(address[],bytes[])` for the new account.
    function deployAccount(bytes32 salt, bytes calldata initData) external returns (address account) {
        if (initData.length < 4 || bytes4(initData[:4]) != IInitializableAccount.initializeAccount.selector) {
            revert InvalidInitData();
        }
        account = predictAccountAddress(salt, initData);
        if (account.code.length != 0) return account;
        new AccountProxy{salt: salt}(BEACON, initData);
        emit AccountCreated(account, msg.sender);
        emit AccountDeployed(account, salt);
    }

    /// @notice The address `deployAccount(salt, initData)` deploys to, whoever calls it.
    function predictAccountAddress(bytes32 salt, bytes calldata initData) public view returns (address) {
        bytes32 initCodeHash = keccak256(bytes.concat(type(AccountProxy).creationCode, abi.encode(BEACON, initData)));
        return Create2.computeAddress(salt, initCodeHash);
    }
}
