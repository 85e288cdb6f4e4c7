"""The policy simulator: replay the real 2015–2016 flows under the petition's rule and its
alternatives (docs/simulation.md).

>>> result = simulate("2015", ["observed"], seed=1)
>>> result.summary()["policies"]["observed"]["states"]["DE"]["received"]
441895
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fairshare.simulation.dynamics import DynamicsParams, PolicyRun, run_policy
from fairshare.simulation.flows import (
    DEFAULT_FLOW_ASSUMPTIONS,
    FlowAssumptions,
    Flows,
    build_flows,
)
from fairshare.simulation.metrics import policy_metrics
from fairshare.simulation.policies import Policy, builtin_policies, load_policy

__all__ = [
    "DEFAULT_POLICIES",
    "DynamicsParams",
    "FlowAssumptions",
    "Flows",
    "PolicyRun",
    "SimulationResult",
    "build_flows",
    "builtin_policies",
    "load_policy",
    "run_policy",
    "simulate",
]

#: The six policies of the issue, in the order of the report.
DEFAULT_POLICIES = ("observed", "dublin", "population", "eu2015", "pact2024", "dublin-iv")


@dataclass
class SimulationResult:
    """The runs of several policies on the same flows."""

    scenario: str
    seed: int
    flows: Flows
    params: DynamicsParams
    runs: list[PolicyRun]

    def summary(self) -> dict[str, Any]:
        """The JSON contract: ``{"policies": {name: {"states": {...}, "metrics": {...}}}}``."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "persons": self.flows.persons,
            "days": len(self.flows.days),
            "first_day": self.flows.days[0].isoformat(),
            "last_day": self.flows.days[-1].isoformat(),
            "parameters": {
                "dynamics": {
                    k: getattr(self.params, k)
                    for k in (
                        "registration_factor",
                        "screening_days",
                        "transfer_days",
                        "reception_factor",
                        "secondary_movement",
                    )
                },
                "flows": self.flows.assumptions.describe(),
            },
            "policies": {
                run.policy.name: {
                    "title": run.policy.title,
                    "reference": run.policy.reference,
                    **policy_metrics(run),
                }
                for run in self.runs
            },
        }


def simulate(
    scenario: str = "2015-2016",
    policies: Sequence[str | Policy] = DEFAULT_POLICIES,
    params: DynamicsParams | None = None,
    *,
    assumptions: FlowAssumptions = DEFAULT_FLOW_ASSUMPTIONS,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Build the flows of ``scenario`` and run each policy on them (seeded, deterministic).

    ``on_progress`` is called with the number of policy-days just done.
    """
    flows = build_flows(scenario, assumptions=assumptions, seed=seed)
    p = params or DynamicsParams()
    chosen = [load_policy(x) if isinstance(x, str) else x for x in policies]
    runs = [run_policy(flows, pol, p, seed=seed, on_day=on_progress) for pol in chosen]
    return SimulationResult(scenario, seed, flows, p, runs)
