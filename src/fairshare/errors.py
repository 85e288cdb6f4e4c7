"""One exception hierarchy for the whole project.

Every error says what was wrong *and what to do next*, in the user's terms. The command line
turns any :class:`InputError` into exit code 2 and a single line on standard error; anything
else is a bug.

    FairshareError
    └── InputError                 bad or incomplete input: exit code 2
        ├── DataNotAvailableError  an indicator value is not in the bundled (or given) data
        ├── UnknownStateError      a state or group code that is not known
        ├── TieError               a tie that must be broken, and no seed was given
        └── InfeasibleError        the constraints (minimums, maximums) cannot all be met
"""

from __future__ import annotations


class FairshareError(Exception):
    """Base class of every error fairshare raises on purpose."""


class InputError(FairshareError, ValueError):
    """The input cannot be used as given; the message says what to fix."""


class DataNotAvailableError(InputError, LookupError):
    """A value (indicator, state, year) is not in the data at hand."""


class UnknownStateError(InputError, LookupError):
    """A state, region or group code that fairshare does not know."""


class TieError(InputError):
    """Two or more units are exactly tied and no seeded lottery was requested."""


class InfeasibleError(InputError):
    """Minimums, maximums and the total cannot all be satisfied at once."""
