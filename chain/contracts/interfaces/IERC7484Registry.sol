// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice ERC-7484 module registry, as the account consults it (the calls revert for a refused module).
interface IERC7484Registry {
    function check(address module) external view;

    function check(address module, uint256 moduleType) external view;

    function check(address module, address[] calldata attesters, uint256 threshold) external view;

    function check(address module, uint256 moduleType, address[] calldata attesters, uint256 threshold)
        external
        view;

    function checkForAccount(address smartAccount, address module) external view;

    function checkForAccount(address smartAccount, address module, uint256 moduleType) external view;

    function trustAttesters(uint8 threshold, address[] calldata attesters) external;
}
