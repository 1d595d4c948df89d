// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// Test-only contracts for the dapps calls tests.

/// The least of an ERC-20: balances, transfer and its Transfer event, and a free mint.
contract PlainToken {
    mapping(address holder => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    function mint(address to, uint256 value) external {
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "balance too low");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}
