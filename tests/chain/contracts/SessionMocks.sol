// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// Test-only contracts for the session-key tests.

/// A call target that accepts any call and value, and counts the calls it received.
contract Sink {
    uint256 public calls;

    fallback() external payable {
        calls += 1;
    }

    receive() external payable {}
}

/// An ERC-7484 registry that refuses the modules it was told to refuse.
contract MockRegistry {
    mapping(address module => bool) public refused;
    mapping(address account => uint8) public thresholds;

    error ModuleRefused(address module, uint256 moduleType);

    function refuse(address module) external {
        refused[module] = true;
    }

    function check(address module, uint256 moduleType) external view {
        if (refused[module]) revert ModuleRefused(module, moduleType);
    }

    function trustAttesters(uint8 threshold, address[] calldata) external {
        thresholds[msg.sender] = threshold;
    }
}
