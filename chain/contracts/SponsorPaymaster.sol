// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BasePaymaster} from "@account-abstraction/contracts/core/BasePaymaster.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {_packValidationData} from "@account-abstraction/contracts/core/Helpers.sol";

/// @title SponsorPaymaster
/// @notice Verifying paymaster: pays for a user operation only when the portal's sponsor key signed it, and
/// never more than the cost the sponsor signed for.
///
/// paymasterAndData = paymaster (20) ‖ paymasterVerificationGasLimit (16) ‖ postOpGasLimit (16)
///                    ‖ validUntil (6) ‖ validAfter (6) ‖ maxCost (16) ‖ sponsor signature (65 bytes r ‖ s ‖ v)
/// The sponsor signs the EIP-191 personal message of {getHash}: the account, nonce, initCode and callData of
/// the operation, the chain id, this paymaster, the window and `maxCost`, the most wei the operation may
/// cost. Validation fails when the EntryPoint's maximum cost for the operation (all its gas limits times
/// maxFeePerGas) exceeds `maxCost`, so no gas limit or fee can make the sponsor pay more than it signed for.
///
/// The sponsor is immutable (validation reads no storage, as ERC-7562 asks of an unstaked paymaster): a new
/// sponsor key means a new paymaster (its CREATE2 address changes with it) and a new deposit.
/// The owner funds and withdraws the EntryPoint deposit (BasePaymaster's deposit/withdrawTo/stake functions).
contract SponsorPaymaster is BasePaymaster {
    uint256 private constant VALID_UNTIL_OFFSET = PAYMASTER_DATA_OFFSET;
    uint256 private constant VALID_AFTER_OFFSET = PAYMASTER_DATA_OFFSET + 6;
    uint256 private constant MAX_COST_OFFSET = PAYMASTER_DATA_OFFSET + 12;
    uint256 private constant SIGNATURE_OFFSET = PAYMASTER_DATA_OFFSET + 28;
    uint256 private constant SIGNATURE_LENGTH = 65;
    /// n / 2 of secp256k1: a sponsor signature with a larger s is refused (as OpenZeppelin's ECDSA does).
    uint256 private constant SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    address public immutable sponsor;

    error InvalidPaymasterData(uint256 length);
    error ZeroSponsor();

    constructor(IEntryPoint entryPoint_, address owner_, address sponsor_) BasePaymaster(entryPoint_) {
        if (sponsor_ == address(0)) revert ZeroSponsor();
        _transferOwnership(owner_);
        sponsor = sponsor_;
    }

    /// @notice The hash the sponsor signs (as an EIP-191 personal message) for `userOp`, its window and cap:
    /// keccak256(abi.encode(sender, nonce, keccak256(initCode), keccak256(callData), chainid, this paymaster,
    /// validUntil, validAfter, maxCost)).
    function getHash(PackedUserOperation calldata userOp, uint48 validUntil, uint48 validAfter, uint128 maxCost)
        public
        view
        returns (bytes32)
    {
        return _sponsorHash(userOp.sender, userOp.nonce, userOp.initCode, userOp.callData, validUntil, validAfter, maxCost);
    }

    function _sponsorHash(
        address sender,
        uint256 nonce,
        bytes calldata initCode,
        bytes calldata callData,
        uint256 validUntil,
        uint256 validAfter,
        uint256 maxCost
    ) private view returns (bytes32 digest) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, initCode.offset, initCode.length)
            let initCodeHash := keccak256(ptr, initCode.length)
            calldatacopy(ptr, callData.offset, callData.length)
            let callDataHash := keccak256(ptr, callData.length)
            mstore(ptr, and(sender, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x20), nonce)
            mstore(add(ptr, 0x40), initCodeHash)
            mstore(add(ptr, 0x60), callDataHash)
            mstore(add(ptr, 0x80), chainid())
            mstore(add(ptr, 0xa0), address())
            mstore(add(ptr, 0xc0), and(validUntil, 0xffffffffffff))
            mstore(add(ptr, 0xe0), and(validAfter, 0xffffffffffff))
            mstore(add(ptr, 0x100), and(maxCost, 0xffffffffffffffffffffffffffffffff))
            digest := keccak256(ptr, 0x120)
        }
    }

    /// Valid when the sponsor signed (low s, v 27/28) the EIP-191 message of {getHash} and the EntryPoint's
    /// maximum cost of the operation is within the signed cap; the window goes back to the EntryPoint.
    /// (Fields read straight from calldata; the EntryPoint encodes the operation it passes.)
    function _validatePaymasterUserOp(PackedUserOperation calldata userOp, bytes32, uint256 requiredPreFund)
        internal
        view
        override
        returns (bytes memory context, uint256 validationData)
    {
        bytes calldata data = userOp.paymasterAndData;
        if (data.length != SIGNATURE_OFFSET + SIGNATURE_LENGTH) revert InvalidPaymasterData(data.length);
        // validUntil (6) ‖ validAfter (6) ‖ maxCost (16), left-aligned in one word (the length is checked)
        uint256 terms;
        assembly ("memory-safe") {
            terms := calldataload(add(data.offset, 52)) // VALID_UNTIL_OFFSET
        }
        uint256 validUntil = terms >> 208;
        uint256 validAfter = (terms >> 160) & type(uint48).max;
        uint256 maxCost = (terms >> 32) & type(uint128).max;
        bytes32 digest =
            _sponsorHash(userOp.sender, userOp.nonce, userOp.initCode, userOp.callData, validUntil, validAfter, maxCost);
        address expected = sponsor;
        bool valid;
        assembly ("memory-safe") {
            let signature := add(data.offset, 80) // SIGNATURE_OFFSET
            // EIP-191 personal message of the 32-byte digest
            mstore(0x00, "\x19Ethereum Signed Message:\n32")
            mstore(0x1c, digest)
            let message := keccak256(0x00, 0x3c)
            let s := calldataload(add(signature, 0x20))
            let ptr := mload(0x40)
            mstore(ptr, message)
            mstore(add(ptr, 0x20), byte(0, calldataload(add(signature, 0x40)))) // v
            mstore(add(ptr, 0x40), calldataload(signature)) // r
            mstore(add(ptr, 0x60), s)
            mstore(0x00, 0)
            let ok := staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20)
            valid := and(
                and(and(ok, eq(returndatasize(), 0x20)), eq(mload(0x00), expected)),
                and(iszero(gt(s, SECP256K1_HALF_N)), iszero(gt(requiredPreFund, maxCost)))
            )
        }
        return (context, _packValidationData(!valid, uint48(validUntil), uint48(validAfter)));
    }
}
