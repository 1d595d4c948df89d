// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ModularSmartAccount} from "chain/contracts/ModularSmartAccount.sol";

/// Test-only second implementation of the account: the same account plus a function, as an upgrade
/// through the beacon would bring.
contract AccountV2 is ModularSmartAccount {
    constructor(address entryPoint_) ModularSmartAccount(entryPoint_) {}

    function version() external pure returns (uint256) {
        return 2;
    }
}
