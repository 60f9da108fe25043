"""Identity resolution, the pure part (docs/identity.md): no storage, no gRPC, stdlib only.

How the storage layer uses it, per accepted message:

1. `extract_external_ids(message)` → `ExtractedIds` (user ids and account ids), plus
   `with_configured_ids` for the keys the space's rules name.
2. For each collection, load every surviving profile that holds any of those ids as a
   `ProfileState` (follow merges to the survivor).
3. `plan_resolution(ids, profiles, rules, now_ms)` → `ResolutionPlan`: CREATE a profile,
   ATTACH to `target`, MERGE `merged` into `target` (in order), or UNRESOLVED (keep the event
   without a profile); add `added` to the target at `now_ms`; record `violations`.
   `profile_after` gives the target's expected state, for checking an implementation.
4. Apply the message's traits with `apply_traits`; on a merge fold each loser's traits into
   the survivor's with `merge_traits_into`.

Rules (`IdentityRules`) are per space, stored as JSON via `to_dict` / `from_dict`.
"""

from .ids import ACCOUNTS, USERS, ExternalId, ExtractedIds, extract_external_ids, id_text, with_configured_ids
from .planner import (
    NO_MATCHING_IDENTIFIERS,
    Action,
    HeldId,
    ProfileId,
    ProfileState,
    ResolutionPlan,
    Violation,
    ViolationKind,
    plan_resolution,
    profile_after,
)
from .rules import (
    DEFAULT_BLOCKED_PATTERNS,
    DEFAULT_BLOCKED_VALUES,
    DEFAULT_TYPES,
    BlockedValues,
    IdentityRules,
    IdTypeRule,
    InvalidIdentityRules,
    Limit,
    Period,
)
from .traits import TraitUpdate, TraitValue, apply_traits, merge_traits_into, visible_traits

__all__ = [
    "ACCOUNTS",
    "DEFAULT_BLOCKED_PATTERNS",
    "DEFAULT_BLOCKED_VALUES",
    "DEFAULT_TYPES",
    "NO_MATCHING_IDENTIFIERS",
    "USERS",
    "Action",
    "BlockedValues",
    "ExternalId",
    "ExtractedIds",
    "HeldId",
    "IdTypeRule",
    "IdentityRules",
    "InvalidIdentityRules",
    "Limit",
    "Period",
    "ProfileId",
    "ProfileState",
    "ResolutionPlan",
    "TraitUpdate",
    "TraitValue",
    "Violation",
    "ViolationKind",
    "apply_traits",
    "extract_external_ids",
    "id_text",
    "merge_traits_into",
    "plan_resolution",
    "profile_after",
    "visible_traits",
    "with_configured_ids",
]
