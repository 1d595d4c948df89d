// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BasePaymaster} from "@account-abstraction/contracts/core/BasePaymaster.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {_packValidationData} from "@account-abstraction/contracts/core/Helpers.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title SponsorPaymaster
/// @notice Verifying paymaster: pays for a user operation only when the portal's sponsor key signed it.
///
/// paymasterAndData = paymaster (20) ‖ paymasterVerificationGasLimit (16) ‖ postOpGasLimit (16)
///                    ‖ validUntil (6) ‖ validAfter (6) ‖ sponsor signature (65 bytes r ‖ s ‖ v)
/// The sponsor signs the EIP-191 personal message of {getHash}: every field of the operation except the
/// account's signature and the sponsor signature itself, the chain id, this paymaster and the window.
/// The owner funds and withdraws the EntryPoint deposit (BasePaymaster's deposit/withdrawTo/stake functions).
contract SponsorPaymaster is BasePaymaster {
    uint256 private constant VALID_UNTIL_OFFSET = PAYMASTER_DATA_OFFSET;
    uint256 private constant VALID_AFTER_OFFSET = PAYMASTER_DATA_OFFSET + 6;
    uint256 private constant SIGNATURE_OFFSET = PAYMASTER_DATA_OFFSET + 12;
    uint256 private constant SIGNATURE_LENGTH = 65;

    address public sponsor;

    event SponsorChanged(address indexed previousSponsor, address indexed newSponsor);

    error InvalidPaymasterData(uint256 length);
    error ZeroSponsor();

    constructor(IEntryPoint entryPoint_, address owner_, address sponsor_) BasePaymaster(entryPoint_) {
        _transferOwnership(owner_);
        _setSponsor(sponsor_);
    }

    function setSponsor(address newSponsor) external onlyOwner {
        _setSponsor(newSponsor);
    }

    /// @notice The hash the sponsor signs (as an EIP-191 personal message) for `userOp` and its window.
    function getHash(PackedUserOperation calldata userOp, uint48 validUntil, uint48 validAfter)
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
                userOp.accountGasLimits,
                bytes32(userOp.paymasterAndData[PAYMASTER_VALIDATION_GAS_OFFSET:PAYMASTER_DATA_OFFSET]),
                userOp.preVerificationGas,
                userOp.gasFees,
                block.chainid,
                address(this),
                validUntil,
                validAfter
            )
        );
    }

    function _validatePaymasterUserOp(PackedUserOperation calldata userOp, bytes32, uint256)
        internal
        view
        override
        returns (bytes memory context, uint256 validationData)
    {
        bytes calldata data = userOp.paymasterAndData;
        if (data.length != SIGNATURE_OFFSET + SIGNATURE_LENGTH) revert InvalidPaymasterData(data.length);
        uint48 validUntil = uint48(bytes6(data[VALID_UNTIL_OFFSET:VALID_AFTER_OFFSET]));
        uint48 validAfter = uint48(bytes6(data[VALID_AFTER_OFFSET:SIGNATURE_OFFSET]));
        bytes32 digest = MessageHashUtils.toEthSignedMessageHash(getHash(userOp, validUntil, validAfter));
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(digest, data[SIGNATURE_OFFSET:]);
        bool valid = error == ECDSA.RecoverError.NoError && signer == sponsor;
        return ("", _packValidationData(!valid, validUntil, validAfter));
    }

    function _setSponsor(address newSponsor) private {
        if (newSponsor == address(0)) revert ZeroSponsor();
        emit SponsorChanged(sponsor, newSponsor);
        sponsor = newSponsor;
    }
}
