// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BasePaymaster} from "@account-abstraction/contracts/core/BasePaymaster.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {_packValidationData} from "@account-abstraction/contracts/core/Helpers.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

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

    address public immutable sponsor;

    error InvalidPaymasterData(uint256 length);
    error ZeroSponsor();

    constructor(IEntryPoint entryPoint_, address owner_, address sponsor_) BasePaymaster(entryPoint_) {
        if (sponsor_ == address(0)) revert ZeroSponsor();
        _transferOwnership(owner_);
        sponsor = sponsor_;
    }

    /// @notice The hash the sponsor signs (as an EIP-191 personal message) for `userOp`, its window and cap.
    function getHash(PackedUserOperation calldata userOp, uint48 validUntil, uint48 validAfter, uint128 maxCost)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                userOp.sender,
                userOp.nonce,
                keccak256(userOp.initCode),
                keccak256(userOp.callData),
                block.chainid,
                address(this),
                validUntil,
                validAfter,
                maxCost
            )
        );
    }

    function _validatePaymasterUserOp(PackedUserOperation calldata userOp, bytes32, uint256 requiredPreFund)
        internal
        view
        override
        returns (bytes memory context, uint256 validationData)
    {
        bytes calldata data = userOp.paymasterAndData;
        if (data.length != SIGNATURE_OFFSET + SIGNATURE_LENGTH) revert InvalidPaymasterData(data.length);
        uint48 validUntil = uint48(bytes6(data[VALID_UNTIL_OFFSET:VALID_AFTER_OFFSET]));
        uint48 validAfter = uint48(bytes6(data[VALID_AFTER_OFFSET:MAX_COST_OFFSET]));
        uint128 maxCost = uint128(bytes16(data[MAX_COST_OFFSET:SIGNATURE_OFFSET]));
        bytes32 digest = MessageHashUtils.toEthSignedMessageHash(getHash(userOp, validUntil, validAfter, maxCost));
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(digest, data[SIGNATURE_OFFSET:]);
        bool valid = error == ECDSA.RecoverError.NoError && signer == sponsor && requiredPreFund <= maxCost;
        return ("", _packValidationData(!valid, validUntil, validAfter));
    }
}
