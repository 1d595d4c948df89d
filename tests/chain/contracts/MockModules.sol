// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IModularAccount} from "chain/contracts/interfaces/IERC7579Module.sol";

/// Test-only modules standing in for the later ones: they prove the account needs no change for them.

/// An executor (type 2), as guardian recovery will be: acts on the accounts that installed it.
contract MockExecutor {
    mapping(address account => bool) public installed;

    function onInstall(bytes calldata) external {
        installed[msg.sender] = true;
    }

    function onUninstall(bytes calldata) external {
        installed[msg.sender] = false;
    }

    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 2;
    }

    function isInitialized(address account) external view returns (bool) {
        return installed[account];
    }

    function transfer(address account, address target, uint256 value) external returns (bytes[] memory) {
        return IModularAccount(account).executeFromExecutor(bytes32(0), abi.encodePacked(target, value));
    }
}

/// A fallback handler (type 3) for a selector the account does not implement.
contract MockFallback {
    function onInstall(bytes calldata) external {}

    function onUninstall(bytes calldata) external {}

    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 3;
    }

    function isInitialized(address) external pure returns (bool) {
        return true;
    }

    /// The original caller (appended by the account) and the account.
    function whoCalled() external view returns (address caller, address account) {
        caller = address(bytes20(msg.data[msg.data.length - 20:]));
        account = msg.sender;
    }
}

/// A validator (type 1), as session keys will be: ECDSA by a key registered at install.
contract MockEcdsaValidator {
    mapping(address account => address) public signer;

    function onInstall(bytes calldata data) external {
        signer[msg.sender] = abi.decode(data, (address));
    }

    function onUninstall(bytes calldata) external {
        delete signer[msg.sender];
    }

    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 1;
    }

    function isInitialized(address account) external view returns (bool) {
        return signer[account] != address(0);
    }

    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash) external view returns (uint256) {
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(userOpHash, userOp.signature);
        return error == ECDSA.RecoverError.NoError && recovered == signer[msg.sender] ? 0 : 1;
    }

    function isValidSignatureWithSender(address, bytes32 hash, bytes calldata signature)
        external
        view
        returns (bytes4)
    {
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(hash, signature);
        return error == ECDSA.RecoverError.NoError && recovered == signer[msg.sender] ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}
