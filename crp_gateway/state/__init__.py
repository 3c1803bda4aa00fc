"""Shared state: fast, cross-replica counters, flags and session chain tips.

:class:`SharedState` has two implementations: :class:`MemoryState` (one process,
used when ``REDIS_URL`` is unset) and :class:`RedisState`. Keys carry a
``{scope}`` hash tag so that all of one tenant's (or one client address's) keys
land in the same Redis Cluster slot.
"""

from crp_gateway.state.base import (
    Claim,
    ClaimRequest,
    ContinuationPoint,
    RateDecision,
    SharedState,
)
from crp_gateway.state.memory import MemoryState
from crp_gateway.state.redis_state import RedisState

__all__ = [
    "Claim",
    "ClaimRequest",
    "ContinuationPoint",
    "MemoryState",
    "RateDecision",
    "RedisState",
    "SharedState",
]
