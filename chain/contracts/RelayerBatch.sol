// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title RelayerBatch
/// @notice Lets the portal's relayer send many calls (account deployments through MSAFactory) in one
/// transaction. Each call runs on its own: one that reverts is reported with its index and revert data
/// (CallFailed) and the others go on.
///
/// Anyone may call it; the calls it makes come from this contract, so only calls whose effect does not depend
/// on the caller belong here (MSAFactory.deployAccount: the account's address and set-up depend on the salt
/// and initData only).
///
/// `strict` is for gas estimation: with it, the first call that reverts reverts the whole batch with
/// CallReverted(index, revertData), so that a node's eth_estimateGas finds a gas limit at which every call
/// succeeds (without it, a call starved of gas would only be reported, and the estimate would be too low),
/// and the relayer learns which call to drop.
contract RelayerBatch {
    struct Call {
        address target;
        bytes data;
    }

    event CallFailed(uint256 indexed index, bytes reason);

    error CallReverted(uint256 index, bytes reason);

    function callEach(Call[] calldata calls, bool strict) external {
        uint256 count = calls.length;
        for (uint256 i; i < count; ++i) {
            (bool success, bytes memory reason) = calls[i].target.call(calls[i].data);
            if (!success) {
                if (strict) revert CallReverted(i, reason);
                emit CallFailed(i, reason);
            }
        }
    }
}
