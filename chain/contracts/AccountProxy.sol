// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";

/// @title AccountProxy
/// @notice The beacon proxy every account is (MSAFactory deploys it): the same interface as OpenZeppelin's
/// BeaconProxy (constructor(beacon, data), the beacon in the ERC-1967 beacon slot, `BeaconUpgraded(beacon)`
/// at construction, `data` delegatecalled to the beacon's implementation), with a leaner call path.
///
/// Every call asks the beacon for its current implementation (nothing is cached, so upgrading the beacon
/// upgrades every account at once) and delegatecalls it. The beacon is an immutable of the proxy's code (as
/// in OpenZeppelin's BeaconProxy), so a call reads no storage of the account for it.
contract AccountProxy {
    address private immutable _BEACON;

    /// @param beacon an UpgradeableBeacon (it and its implementation must have code)
    /// @param data the implementation's initialisation call, delegatecalled here (empty: no call, no value)
    constructor(address beacon, bytes memory data) payable {
        ERC1967Utils.upgradeBeaconToAndCall(beacon, data);
        _BEACON = beacon;
    }

    fallback() external payable {
        _delegate();
    }

    receive() external payable {
        _delegate();
    }

    /// Delegates the call to the beacon's implementation and returns or reverts with its result.
    function _delegate() private {
        address beacon = _BEACON;
        assembly {
            mstore(0x00, shl(224, 0x5c60da1b)) // implementation()
            let ok := staticcall(gas(), beacon, 0x00, 0x04, 0x00, 0x20)
            if iszero(and(ok, eq(returndatasize(), 0x20))) { revert(0x00, 0x00) }
            let implementation := mload(0x00)
            calldatacopy(0x00, 0x00, calldatasize())
            ok := delegatecall(gas(), implementation, 0x00, calldatasize(), 0x00, 0x00)
            returndatacopy(0x00, 0x00, returndatasize())
            if iszero(ok) { revert(0x00, returndatasize()) }
            return(0x00, returndatasize())
        }
    }
}
