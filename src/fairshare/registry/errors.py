"""The registry's errors, in the one hierarchy of :mod:`fairshare.errors`.

Each names what was wrong and what to do next; the HTTP layer maps them to status codes
(shown in brackets; the mapping is the API's, listed here for orientation)::

    InputError (fairshare.errors)
    ├── ValidationError (fairshare.cases)  bad input, with JSON Pointers          [422]
    ├── TransitionError (fairshare.workflow)  a workflow step that is not allowed  [409]
    └── RegistryError
        ├── NotFoundError             no such record, or not in the caller's scope      [404]
        ├── ConflictError             the request clashes with the stored state        [409]
        │   ├── StaleVersionError     the record changed since it was read (If-Match)   [412]
        │   ├── CapacityExceededError a capacity or service count would drop below 0    [409]
        │   └── DuplicateIdempotencyError  the key was used for a different request     [422]
        └── ScopeError           the actor has no state for a state-scoped action  [403]
"""

from __future__ import annotations

from fairshare.errors import InputError
from fairshare.workflow import TransitionError

__all__ = [
    "CapacityExceeded",
    "CapacityExceededError",
    "Conflict",
    "ConflictError",
    "DuplicateIdempotency",
    "DuplicateIdempotencyError",
    "NotFound",
    "NotFoundError",
    "RegistryError",
    "ScopeError",
    "StaleVersion",
    "StaleVersionError",
    "TransitionError",
]


class RegistryError(InputError):
    """Base class of the registry's own errors."""


class NotFoundError(RegistryError, LookupError):
    """No record with this id, or none the caller may see (the two are not told apart)."""

    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(
            f"{resource} '{resource_id}' does not exist or is outside your scope; check the id"
        )
        self.resource = resource
        self.resource_id = resource_id


class ConflictError(RegistryError):
    """The request cannot be applied to the record as it is now stored."""


class StaleVersionError(ConflictError):
    """Optimistic concurrency: the record was changed by someone else since it was read."""

    def __init__(self, resource: str, resource_id: str, expected: int, current: int) -> None:
        super().__init__(
            f"{resource} '{resource_id}' is at version {current}, not {expected}: someone "
            "changed it since you read it; read it again, check the change and retry"
        )
        self.resource = resource
        self.resource_id = resource_id
        self.expected = expected
        self.current = current


class CapacityExceededError(ConflictError):
    """A capacity or service-place count would drop below zero."""


class DuplicateIdempotencyError(ConflictError):
    """An idempotency key was reused for a different request, or is still being processed."""


class ScopeError(RegistryError, PermissionError):
    """A state-scoped action by an actor without a state (e.g. a registrar with no state)."""


# Short names, as used in the issue and by the API layer.
NotFound = NotFoundError
Conflict = ConflictError
StaleVersion = StaleVersionError
CapacityExceeded = CapacityExceededError
DuplicateIdempotency = DuplicateIdempotencyError
