"""Foundation benchmark: apportionment and the ledger, against the `apportionment` library.

Run:  .venv/bin/python benchmarks/bench_foundation.py

Prints a table of wall times (best of several runs) for the EU-28 2015 population key and
160,000 persons, for every method that fairshare and the peer library (martinlackner's
`apportionment`, PyPI, a test-only dependency) both have, and for the running ledger.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from apportionment import methods as peer

from fairshare.apportion import apportion
from fairshare.keys import compute_key
from fairshare.ledger import Ledger

PEER_NAMES = {
    "hamilton": "largest_remainder",
    "jefferson": "dhondt",
    "webster": "saintelague",
    "adams": "adams",
    "huntington-hill": "huntington",
    "dean": "dean",
    "quota": "quota",
}


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    key = compute_key("population", year=2015, participants="EU28")
    shares = key.shares
    seats = 160_000
    # The peer library needs integer weights: the populations themselves.
    common = 1
    for share in shares.values():
        common = math.lcm(common, share.denominator)
    votes = [int(share * common) for share in shares.values()]
    print(f"EU-28 2015 population key, {seats:,} persons, best of 5 (seconds)")
    print(
        f"{'method':<18}{'fairshare (exact)':>20}{'peer, fractions':>18}{'peer, floats':>15}  agree"
    )
    for ours, theirs in PEER_NAMES.items():
        t_ours = best_of(lambda o=ours: apportion(shares, seats, o))
        repeat = 1 if theirs == "quota" else 3
        t_frac = best_of(lambda t=theirs: peer.compute(t, votes, seats, fractions=True), repeat)
        t_float = best_of(lambda t=theirs: peer.compute(t, votes, seats), repeat)
        agree = list(apportion(shares, seats, ours).seats.values()) == peer.compute(
            theirs, votes, seats, fractions=True
        )
        print(f"{ours:<18}{t_ours:>20.4f}{t_frac:>18.4f}{t_float:>15.4f}  {agree}")
    print()
    print(f"{'ledger':<30}{'seconds':>10}")
    for persons in (10_000, 160_000):
        t = best_of(lambda p=persons: Ledger.new(shares, seed=1).take(p), 3)
        print(f"{f'take({persons:,}) over 28 states':<30}{t:>10.4f}")
    dublin = compute_key("population", year=2015, participants="DUBLIN").shares
    t = best_of(lambda: Ledger.new(dublin, seed=1).take(160_000), 3)
    print(f"{'take(160,000) over 32 (with LI)':<30}{t:>10.4f}")


if __name__ == "__main__":
    main()
