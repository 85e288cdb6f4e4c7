"""Print the residuals of the EU 2015 keys against the Commission's published tables.

Regenerates the table in docs/keys.md:  .venv/bin/python scripts/key_residuals.py
"""

from __future__ import annotations

import csv
import io

from fairshare.keys import compute_key
from fairshare.reference import read_data_file


def main() -> None:
    text = read_data_file("relocation_2015_published.csv")
    published = {row["geo"]: row for row in csv.DictReader(io.StringIO(text))}
    sept, may = compute_key("eu2015"), compute_key("eu2015-may")
    total = sum(int(r["decision_2015_1601_total_66000"]) for r in published.values())
    print(
        "| state | 2015/1601 published % | eu2015 % | diff pp "
        "| COM(2015) 286 % | eu2015-may % | diff pp |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for state in sorted(published):
        p1 = int(published[state]["decision_2015_1601_total_66000"]) / total * 100
        o1 = float(sept.shares[state]) * 100
        p2 = float(published[state]["may2015_key_pct"])
        o2 = float(may.shares[state]) * 100
        print(
            f"| {state} | {p1:.3f} | {o1:.3f} | {o1 - p1:+.3f} "
            f"| {p2:.2f} | {o2:.3f} | {o2 - p2:+.3f} |"
        )


if __name__ == "__main__":
    main()
