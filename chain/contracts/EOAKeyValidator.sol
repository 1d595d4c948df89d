// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {
    IModule,
    IValidator,
    IModularAccount,
    MODULE_TYPE_VALIDATOR,
    VALIDATION_SUCCESS,
    VALIDATION_FAILED,
    ERC1271_MAGIC,
    ERC1271_FAILED
} from "./interfaces/IERC7579Module.sol";

/// @title EOAKeyValidator
/// @notice ERC-7579 validator whose keys are secp256k1 addresses ("owners"), per account.
///
/// Same interface as ZKsync SSO's EOAKeyValidator. The account is always `msg.sender` for mutators.
/// A signature is the 65-byte `r ‖ s ‖ v` (v = 27 or 28, low s) over the raw hash (no EIP-191 prefix):
/// the userOpHash for user operations, the account's ERC-1271 digest for messages. It is valid when
/// the recovered address is an owner of the calling account. Bad signatures never revert.
///
/// Guardian recovery (GuardianExecutor) adds an owner through `addOwner(address)`.
contract EOAKeyValidator is IValidator, IERC165 {
    mapping(address owner => mapping(address account => bool)) private _owners;

    event OwnerAdded(address indexed smartAccount, address indexed owner);
    event OwnerRemoved(address indexed smartAccount, address indexed owner);

    error OwnerAlreadyExists(address smartAccount, address owner);
    error OwnerDoesNotExist(address smartAccount, address owner);
    error ZeroAddress(address smartAccount);

    // ---------------------------------------------------------------- module

    /// @param data abi.encode(address[] initialOwners) (an empty array is fine, empty bytes are not)
    function onInstall(bytes calldata data) external {
        address[] memory owners = abi.decode(data, (address[]));
        for (uint256 i = 0; i < owners.length; ++i) {
            _add(msg.sender, owners[i]);
        }
    }

    /// @param data abi.encode(address[] ownersToRemove); each must be an owner
    function onUninstall(bytes calldata data) external {
        address[] memory owners = abi.decode(data, (address[]));
        for (uint256 i = 0; i < owners.length; ++i) {
            _remove(msg.sender, owners[i]);
        }
    }

    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == MODULE_TYPE_VALIDATOR;
    }

    function isInitialized(address smartAccount) public view returns (bool) {
        return IModularAccount(smartAccount).isModuleInstalled(MODULE_TYPE_VALIDATOR, address(this), "");
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC165).interfaceId || interfaceId == type(IValidator).interfaceId
            || interfaceId == type(IModule).interfaceId;
    }

    // ---------------------------------------------------------------- owners

    function addOwner(address owner) external {
        if (!isInitialized(msg.sender)) revert NotInitialized(msg.sender);
        if (owner == address(0)) revert ZeroAddress(msg.sender);
        _add(msg.sender, owner);
    }

    function removeOwner(address owner) external {
        _remove(msg.sender, owner);
    }

    function isOwnerOf(address account, address owner) external view returns (bool) {
        return _owners[owner][account];
    }

    function _add(address account, address owner) private {
        if (_owners[owner][account]) revert OwnerAlreadyExists(account, owner);
        _owners[owner][account] = true;
        emit OwnerAdded(account, owner);
    }

    function _remove(address account, address owner) private {
        if (!_owners[owner][account]) revert OwnerDoesNotExist(account, owner);
        _owners[owner][account] = false;
        emit OwnerRemoved(account, owner);
    }

    // ---------------------------------------------------------------- validation

    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash)
        external
        view
        returns (uint256)
    {
        return _isValid(msg.sender, userOpHash, userOp.signature) ? VALIDATION_SUCCESS : VALIDATION_FAILED;
    }

    function isValidSignatureWithSender(address, bytes32 hash, bytes calldata data)
        external
        view
        returns (bytes4)
    {
        return _isValid(msg.sender, hash, data) ? ERC1271_MAGIC : ERC1271_FAILED;
    }

    /// Exactly 65 bytes, low s, v 27/28 (OpenZeppelin's non-reverting recovery), signer an owner.
    function _isValid(address account, bytes32 hash, bytes calldata signature) private view returns (bool) {
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(hash, signature);
        return error == ECDSA.RecoverError.NoError && _owners[signer][account];
    }
}
