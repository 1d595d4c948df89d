// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title SessionLib
/// @notice Types, usage trackers and errors of session keys, ABI-compatible with ZKsync SSO's SessionLib:
/// same enums, structs (field order), error signatures. Behaviour is written here from the published
/// rules (see the SessionKeyValidator for the order in which they apply).
///
/// Usage is tracked per session hash in trackers whose innermost key is the account (ERC-7562 friendly):
/// fees; per transfer target; per (call target, selector); per (call target, selector, constraint position).
library SessionLib {
    enum Status {
        NotInitialized,
        Active,
        Closed
    }

    enum LimitType {
        Unlimited,
        Lifetime,
        Allowance
    }

    enum Condition {
        Unconstrained,
        Equal,
        Greater,
        Less,
        GreaterOrEqual,
        LessOrEqual,
        NotEqual
    }

    struct UsageLimit {
        LimitType limitType;
        uint256 limit;
        uint48 period;
    }

    struct Constraint {
        Condition condition;
        uint64 index;
        bytes32 refValue;
        UsageLimit limit;
    }

    struct CallSpec {
        address target;
        bytes4 selector;
        uint256 maxValuePerUse;
        UsageLimit valueLimit;
        Constraint[] constraints;
    }

    struct TransferSpec {
        address target;
        uint256 maxValuePerUse;
        UsageLimit valueLimit;
    }

    struct SessionSpec {
        address signer;
        uint48 expiresAt;
        UsageLimit feeLimit;
        CallSpec[] callPolicies;
        TransferSpec[] transferPolicies;
    }

    struct LimitState {
        uint256 remaining;
        address target;
        bytes4 selector;
        uint256 index;
    }

    struct SessionState {
        Status status;
        uint256 feesRemaining;
        LimitState[] transferValue;
        LimitState[] callValue;
        LimitState[] callParams;
    }

    struct UsageTracker {
        mapping(address account => uint256) lifetimeUsage;
        mapping(uint64 periodId => mapping(address account => uint256)) allowanceUsage;
    }

    struct SessionStorage {
        mapping(address account => Status) status;
        UsageTracker fee;
        mapping(address target => UsageTracker) transferValue;
        mapping(address target => mapping(bytes4 selector => UsageTracker)) callValue;
        mapping(address target => mapping(bytes4 selector => mapping(uint256 position => UsageTracker))) params;
    }

    error ZeroSigner();
    error InvalidSigner(address recovered, address expected);
    error SignerAlreadyUsed(address signer);
    error UnlimitedFees();
    error SessionAlreadyExists(bytes32 sessionHash);
    error SessionExpiresTooSoon(uint256 expiresAt);
    error SessionNotActive();
    error CallPolicyBanned(address target, bytes4 selector);
    error InvalidNonceKey(uint192 nonceKey, uint192 expectedNonceKey);
    error InvalidCallType(bytes1 callType, bytes1 expected);
    error InvalidExecType(bytes1 execType);
    error InvalidTopLevelSelector(bytes4 selector, bytes4 expected);
    error InvalidData();
    error InvalidDataLength(uint256 actualLength, uint256 expectedLength);
    error CallPolicyViolated(address target, bytes4 selector);
    error TransferPolicyViolated(address target);
    error MaxValueExceeded(uint256 usedValue, uint256 maxValuePerUse);
    error ConditionViolated(bytes32 param, bytes32 refValue, uint8 condition);
    error LifetimeUsageExceeded(uint256 lifetimeUsage, uint256 maxUsage);
    error AllowanceExceeded(uint256 allowance, uint256 maxAllowance, uint64 period);
    error EmptyTimeRange();

    /// A validity window [validAfter, validUntil] (inclusive bounds, as packed for the EntryPoint).
    struct TimeRange {
        uint48 validAfter;
        uint48 validUntil;
    }

    /// Charges `value` to `tracker` under `limit` for `account` and narrows `range` to the limit's window:
    /// Unlimited and Lifetime are valid at any time; an Allowance only within period `periodId`
    /// ([periodId·period, (periodId+1)·period − 1]; a zero period panics, as the window is empty).
    function use(
        UsageTracker storage tracker,
        UsageLimit memory limit,
        uint256 value,
        uint48 periodId,
        address account,
        TimeRange memory range
    ) internal {
        if (limit.limitType == LimitType.Lifetime) {
            uint256 used = tracker.lifetimeUsage[account];
            if (value > limit.limit || used > limit.limit - value) {
                revert LifetimeUsageExceeded(used, limit.limit);
            }
            tracker.lifetimeUsage[account] = used + value;
        } else if (limit.limitType == LimitType.Allowance) {
            uint256 used = tracker.allowanceUsage[periodId][account];
            if (value > limit.limit || used > limit.limit - value) {
                revert AllowanceExceeded(used, limit.limit, periodId);
            }
            tracker.allowanceUsage[periodId][account] = used + value;
            uint48 start = periodId * limit.period;
            uint48 end = (periodId + 1) * limit.period - 1;
            if (start > range.validAfter) range.validAfter = start;
            if (end < range.validUntil) range.validUntil = end;
            if (range.validAfter > range.validUntil) revert EmptyTimeRange();
        }
    }

    /// What is left of `limit` for `account` now (the current period for an Allowance); never below zero.
    function remaining(UsageTracker storage tracker, UsageLimit memory limit, address account)
        internal
        view
        returns (uint256)
    {
        uint256 used;
        if (limit.limitType == LimitType.Unlimited) {
            return type(uint256).max;
        } else if (limit.limitType == LimitType.Lifetime) {
            used = tracker.lifetimeUsage[account];
        } else {
            uint64 periodId = limit.period == 0 ? 0 : uint64(block.timestamp / limit.period);
            used = tracker.allowanceUsage[periodId][account];
        }
        return used >= limit.limit ? 0 : limit.limit - used;
    }

    /// Whether `param` satisfies `condition` against `refValue` (as unsigned 256-bit words).
    function satisfies(Condition condition, bytes32 param, bytes32 refValue) internal pure returns (bool) {
        uint256 p = uint256(param);
        uint256 r = uint256(refValue);
        if (condition == Condition.Equal) return p == r;
        if (condition == Condition.Greater) return p > r;
        if (condition == Condition.Less) return p < r;
        if (condition == Condition.GreaterOrEqual) return p >= r;
        if (condition == Condition.LessOrEqual) return p <= r;
        if (condition == Condition.NotEqual) return p != r;
        return true;
    }
}
