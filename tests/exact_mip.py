"""Exact reference models of one allocation batch: a binary MIP over individual cases.

Used by the quality tests (``tests/test_quality.py``: the exact lexicographic optimum of small
instances, by OR-Tools CP-SAT) and by the benchmark (``benchmarks/bench_allocation.py``: the
lexicographic objective folded into weights, by CP-SAT and by PuLP/CBC). One copy of the model,
so that the tests and the benchmark judge the engine against the same constraints.

The model: a binary ``x[c, d]`` for every case ``c`` and every destination ``d`` the case may
go to; ``Σ_d x[c, d] ≤ 1`` (a case goes whole to one destination or waits); cases linked by
``linked_cases`` (connected components, Regulation (EU) No 604/2013 Art. 11) have equal
``x[·, d]``, so they go to the same destination or all wait; per destination
``Σ_c size_c x[c, d] ≤ capacity_d`` and, per service, ``Σ_c needs_{c,s} x[c, d] ≤ places_{d,s}``
(a service not listed has no places). A case may go to ``d`` only if ``d`` participates, is not
excluded by the case (an exclusion names a destination or a state and keeps the case out of
every destination of that state, as the engine does) and, when a family link binds the case
(``binding_destination``), ``d`` is in the bound state; a binding to a state without a
participating destination means the case waits.
A linked group may use only the destinations allowed to all its cases. Needs and tiers come
from :func:`fairshare.screening.screen_case`.

The objectives are the persons levels of the engine's lexicographic objective: tier-1 persons
placed, then tier-2 persons, then all persons. Fairness and preferences are not modelled.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ortools.sat.python import cp_model

from fairshare.allocate import _family_procedure
from fairshare.cases import SERVICES, parse_problem_input
from fairshare.responsibility import binding_destination, linked_groups
from fairshare.screening import screen_case

__all__ = [
    "Levels",
    "MipData",
    "SolverRun",
    "assignment_of",
    "check_assignment",
    "folded_weights",
    "levels_of",
    "prepare",
    "solve_cbc_weighted",
    "solve_cpsat_weighted",
    "solve_lexicographic",
    "weighted_value",
]


@dataclass(frozen=True)
class MipData:
    """The instance as the MIP sees it (indices into ``case_ids`` and ``dest_ids``)."""

    case_ids: tuple[str, ...]
    size: tuple[int, ...]
    tier: tuple[int, ...]
    needs: tuple[tuple[int, ...], ...]  # per case, in the order of SERVICES
    allowed: tuple[tuple[int, ...], ...]  # per case, destinations it (and its group) may use
    groups: tuple[tuple[int, ...], ...]  # linked groups, case indices
    dest_ids: tuple[str, ...]
    dest_state: tuple[str, ...]
    capacity: tuple[int, ...]
    places: tuple[tuple[int, ...], ...]  # per destination, in the order of SERVICES
    participating: tuple[bool, ...]
    # For the columnar form: registration days, binding state per case (None, a state, or
    # "" for a binding that is not available), excluded destinations per case.
    registered: tuple[int, ...] = ()
    binding: tuple[str | None, ...] = ()
    excluded: tuple[tuple[int, ...], ...] = ()

    @property
    def persons(self) -> int:
        """All persons of the batch."""
        return sum(self.size)


@dataclass(frozen=True)
class Levels:
    """Persons placed per level: tier 1, tier 2, and in total."""

    tier1: int
    tier2: int
    total: int


@dataclass
class SolverRun:
    """One solver run on the folded (weighted) MIP.

    ``history``: (seconds since the start of model building, objective) of each improving
    solution; ``best``: the best objective found (``None`` without a solution); ``bound``: the
    solver's upper bound when it reports one; ``status``: the solver's own word.
    """

    name: str
    build_seconds: float = 0.0
    total_seconds: float = 0.0
    best: int | None = None
    bound: float | None = None
    status: str = ""
    levels: Levels | None = None
    history: list[tuple[float, float]] = field(default_factory=list)

    def time_to_reach(self, target: float) -> float | None:
        """Seconds (from the start of model building) to a solution ≥ ``target``, or None."""
        for seconds, value in self.history:
            if value >= target - 1e-9:
                return seconds
        return None


def prepare(doc: Mapping[str, Any]) -> MipData:
    """Validate the input document and derive the sets the MIP needs."""
    problem = parse_problem_input(doc)
    dests = problem.destinations
    dest_ids = tuple(d.id for d in dests)
    dest_state = tuple(d.parent or d.id for d in dests)
    participating = tuple(d.participating for d in dests)
    open_ids = {d.id for d in dests if d.participating}
    open_states = {s for s, p in zip(dest_state, participating, strict=True) if p}
    bind_scope = open_ids | open_states
    index = {c.id: i for i, c in enumerate(problem.cases)}
    first_day = min((c.registered_on for c in problem.cases), default=None)

    size: list[int] = []
    tier: list[int] = []
    needs: list[tuple[int, ...]] = []
    own_allowed: list[set[int]] = []
    registered: list[int] = []
    binding: list[str | None] = []
    excluded_by_case: list[tuple[int, ...]] = []
    screenings = [screen_case(case) for case in problem.cases]
    bindings = [
        binding_destination(case, screening, bind_scope)
        for case, screening in zip(problem.cases, screenings, strict=True)
    ]
    # Art. 11 (family procedure): linked cases bound to different states, as the engine does.
    _family_procedure(problem.cases, bindings, linked_groups(problem.cases))
    for case, screening, bound in zip(problem.cases, screenings, bindings, strict=True):
        size.append(case.size)
        tier.append(screening.tier)
        needs.append(tuple(screening.needs.get(s, 0) for s in SERVICES))
        registered.append((case.registered_on - first_day).days if first_day else 0)
        # An exclusion names a state (all its destinations) or one region.
        named = {ex.state for ex in case.excluded}
        excluded = {d for d in range(len(dests)) if dest_state[d] in named or dest_ids[d] in named}
        excluded_by_case.append(tuple(sorted(excluded)))
        ok = {d for d in range(len(dests)) if participating[d] and d not in excluded}
        if bound is None:
            binding.append(None)
        elif not bound.available:
            binding.append("")
            ok = set()
        else:
            binding.append(bound.state)
            ok = {d for d in ok if bound.state in (dest_state[d], dest_ids[d])}
        own_allowed.append(ok)

    groups = tuple(tuple(index[cid] for cid in group) for group in linked_groups(problem.cases))
    allowed: list[tuple[int, ...]] = [()] * len(problem.cases)
    for group in groups:
        common = set.intersection(*(own_allowed[c] for c in group))
        for c in group:
            allowed[c] = tuple(sorted(common))
    return MipData(
        case_ids=tuple(c.id for c in problem.cases),
        size=tuple(size),
        tier=tuple(tier),
        needs=tuple(needs),
        allowed=tuple(allowed),
        groups=groups,
        dest_ids=dest_ids,
        dest_state=dest_state,
        capacity=tuple(d.capacity for d in dests),
        places=tuple(tuple(d.services.get(s, 0) for s in SERVICES) for d in dests),
        participating=participating,
        registered=tuple(registered),
        binding=tuple(binding),
        excluded=tuple(excluded_by_case),
    )


# --------------------------------------------------------------------------------------------
# Judging an assignment


def assignment_of(output: Mapping[str, Any]) -> dict[str, str | None]:
    """Case id -> destination id (or None) from an ``allocate`` output document."""
    return {a["case"]: a["destination"] for a in output["assignments"]}


def levels_of(data: MipData, assignment: Mapping[str, str | None]) -> Levels:
    """Persons placed by an assignment, per level."""
    t1 = t2 = total = 0
    for c, cid in enumerate(data.case_ids):
        if assignment.get(cid) is None:
            continue
        total += data.size[c]
        if data.tier[c] == 1:
            t1 += data.size[c]
        elif data.tier[c] == 2:
            t2 += data.size[c]
    return Levels(t1, t2, total)


def folded_weights(data: MipData) -> tuple[int, int]:
    """Weights (W1, W2) that fold the persons levels into one objective.

    Objective ``W1·tier1 + W2·tier2 + total`` with ``W2 = P + 1`` and ``W1 = (P + 1)²``, ``P``
    the persons of the batch: ``total ≤ P < W2`` and ``W2·tier2 + total ≤ (P + 1)·P + P <
    W1``, so the weighted optimum is the lexicographic optimum of the three levels.
    """
    p = data.persons
    return (p + 1) ** 2, p + 1


def weighted_value(data: MipData, levels: Levels) -> int:
    """The folded objective of placed persons per level."""
    w1, w2 = folded_weights(data)
    return w1 * levels.tier1 + w2 * levels.tier2 + levels.total


def check_assignment(data: MipData, assignment: Mapping[str, str | None]) -> list[str]:
    """Every hard constraint the assignment breaks (empty when it is feasible)."""
    problems: list[str] = []
    where = {d: i for i, d in enumerate(data.dest_ids)}
    chosen: list[int | None] = []
    for c, cid in enumerate(data.case_ids):
        if cid not in assignment:
            problems.append(f"{cid}: no assignment")
        target = assignment.get(cid)
        if target is None:
            chosen.append(None)
            continue
        if target not in where:
            problems.append(f"{cid}: unknown destination {target}")
            chosen.append(None)
            continue
        d = where[target]
        chosen.append(d)
        if d not in data.allowed[c]:
            problems.append(f"{cid}: may not go to {target}")
    for group in data.groups:
        if len({chosen[c] for c in group}) > 1:
            names = ", ".join(data.case_ids[c] for c in group)
            problems.append(f"linked cases {names} are split")
    for d, did in enumerate(data.dest_ids):
        used = [c for c, x in enumerate(chosen) if x == d]
        persons = sum(data.size[c] for c in used)
        if persons > data.capacity[d]:
            problems.append(f"{did}: {persons} persons exceed capacity {data.capacity[d]}")
        for s, service in enumerate(SERVICES):
            need = sum(data.needs[c][s] for c in used)
            if need > data.places[d][s]:
                problems.append(f"{did}: {need} {service} places needed, {data.places[d][s]} free")
    return problems


# --------------------------------------------------------------------------------------------
# CP-SAT


def _cpsat_model(
    data: MipData,
) -> tuple[cp_model.CpModel, dict[tuple[int, int], cp_model.IntVar]]:
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for c, allowed in enumerate(data.allowed):
        for d in allowed:
            x[c, d] = model.new_bool_var(f"x_{c}_{d}")
        if len(allowed) > 1:
            model.add_at_most_one(x[c, d] for d in allowed)
    for group in data.groups:
        head = group[0]
        for c in group[1:]:
            for d in data.allowed[head]:
                model.add(x[c, d] == x[head, d])
    by_dest: list[list[int]] = [[] for _ in data.dest_ids]
    for c, d in x:
        by_dest[d].append(c)
    for d, cases in enumerate(by_dest):
        if not cases:
            continue
        load = sum(data.size[c] for c in cases)
        if load > data.capacity[d]:
            model.add(sum(data.size[c] * x[c, d] for c in cases) <= data.capacity[d])
        for s in range(len(SERVICES)):
            users = [c for c in cases if data.needs[c][s]]
            if sum(data.needs[c][s] for c in users) > data.places[d][s]:
                model.add(sum(data.needs[c][s] * x[c, d] for c in users) <= data.places[d][s])
    return model, x


def _level_expr(
    data: MipData, x: Mapping[tuple[int, int], cp_model.IntVar], tier: int | None
) -> cp_model.LinearExprT:
    return sum(
        data.size[c] * var for (c, _), var in x.items() if tier is None or data.tier[c] == tier
    )


def _placed(data: MipData, values: Mapping[tuple[int, int], int]) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(data.case_ids)
    for (c, d), value in values.items():
        if value:
            out[data.case_ids[c]] = data.dest_ids[d]
    return out


@dataclass(frozen=True)
class Lexicographic:
    """The exact lexicographic optimum and one optimal assignment."""

    levels: Levels
    assignment: dict[str, str | None]


def solve_lexicographic(
    doc_or_data: Mapping[str, Any] | MipData, *, time_limit: float = 120.0, workers: int = 8
) -> Lexicographic:
    """Exact optimum: maximise tier-1 persons, fix it; tier-2 persons, fix it; all persons.

    Raises ``RuntimeError`` if CP-SAT does not prove optimality within ``time_limit`` seconds
    per level (meant for small instances, up to a few hundred cases). Eight workers by default,
    also on two cores: with one or two workers CP-SAT runs without its LP-based subsolvers and
    may fail to prove even a small knapsack-like level optimal.
    """
    data = doc_or_data if isinstance(doc_or_data, MipData) else prepare(doc_or_data)
    model, x = _cpsat_model(data)
    optimum: list[int] = []
    values: dict[tuple[int, int], int] = {}
    for tier in (1, 2, None):
        expr = _level_expr(data, x, tier)
        model.maximize(expr)
        if values:
            model.clear_hints()
            for key, var in x.items():
                model.add_hint(var, values[key])
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = 0
        status = solver.solve(model)
        if status != cp_model.OPTIMAL:
            raise RuntimeError(f"CP-SAT did not prove the optimum: {solver.status_name(status)}")
        best = round(solver.objective_value)
        optimum.append(best)
        values = {key: int(solver.value(var)) for key, var in x.items()}
        model.add(expr >= best)
    return Lexicographic(Levels(*optimum), _placed(data, values))


class _Recorder(cp_model.CpSolverSolutionCallback):
    def __init__(self, run: SolverRun, start: float) -> None:
        super().__init__()
        self.run = run
        self.start = start

    def on_solution_callback(self) -> None:
        self.run.history.append((time.perf_counter() - self.start, self.objective_value))


def solve_cpsat_weighted(data: MipData, *, time_limit: float, workers: int = 2) -> SolverRun:
    """The folded MIP by CP-SAT, logging the time of every improving solution."""
    run = SolverRun("OR-Tools CP-SAT")
    start = time.perf_counter()
    model, x = _cpsat_model(data)
    w1, w2 = folded_weights(data)
    weight = {1: w1 + 1, 2: w2 + 1, 3: 1}
    model.maximize(sum(weight[data.tier[c]] * data.size[c] * var for (c, _), var in x.items()))
    run.build_seconds = time.perf_counter() - start
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    status = solver.solve(model, _Recorder(run, start))
    run.total_seconds = time.perf_counter() - start
    run.status = solver.status_name(status)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        values = {key: int(solver.value(var)) for key, var in x.items()}
        assignment = _placed(data, values)
        if check_assignment(data, assignment):
            raise RuntimeError("CP-SAT returned an infeasible assignment")
        run.levels = levels_of(data, assignment)
        run.best = weighted_value(data, run.levels)
        run.bound = solver.best_objective_bound
    return run


# --------------------------------------------------------------------------------------------
# PuLP / CBC

_CBC_SOLUTION = re.compile(
    r"(?:Integer solution of|solution of|Solution found of)\s+(-?[\d.eE+]+).*?\(([\d.]+) seconds\)"
)


def solve_cbc_weighted(
    data: MipData, *, time_limit: float, threads: int = 1, grace: float = 60.0
) -> SolverRun:
    """The folded MIP by PuLP's bundled CBC (PuLP builds and writes the model and reads back
    CBC's solution; CBC itself is run here so that it can be killed ``grace`` seconds after
    its time limit, which it does not check before its root node is done).

    PuLP's status is not trusted: when CBC stops on its time limit it may say "Not Solved" or
    "Infeasible" although a solution exists, or "Optimal" for a merely feasible one. The run
    reads the variable values instead, checks the assignment, and evaluates it itself; the
    times of improving solutions are read from CBC's log ("Integer solution of ... (t
    seconds)", measured from CBC's start, to which the model building and writing time before
    CBC starts is added).
    """
    import pulp

    run = SolverRun("PuLP / CBC")
    start = time.perf_counter()
    prob = pulp.LpProblem("fold", pulp.LpMaximize)
    x: dict[tuple[int, int], pulp.LpVariable] = {}
    for c, allowed in enumerate(data.allowed):
        for d in allowed:
            x[c, d] = pulp.LpVariable(f"x_{c}_{d}", cat=pulp.LpBinary)
    w1, w2 = folded_weights(data)
    weight = {1: w1 + 1, 2: w2 + 1, 3: 1}
    prob += pulp.lpSum(weight[data.tier[c]] * data.size[c] * var for (c, _), var in x.items())
    for c, allowed in enumerate(data.allowed):
        if len(allowed) > 1:
            prob += pulp.lpSum(x[c, d] for d in allowed) <= 1
    for group in data.groups:
        head = group[0]
        for c in group[1:]:
            for d in data.allowed[head]:
                prob += x[c, d] == x[head, d]
    by_dest: list[list[int]] = [[] for _ in data.dest_ids]
    for c, d in x:
        by_dest[d].append(c)
    for d, cases in enumerate(by_dest):
        if not cases:
            continue
        if sum(data.size[c] for c in cases) > data.capacity[d]:
            prob += pulp.lpSum(data.size[c] * x[c, d] for c in cases) <= data.capacity[d]
        for s in range(len(SERVICES)):
            users = [c for c in cases if data.needs[c][s]]
            if sum(data.needs[c][s] for c in users) > data.places[d][s]:
                prob += pulp.lpSum(data.needs[c][s] * x[c, d] for c in users) <= data.places[d][s]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cbc.log"
        mps = Path(tmp) / "model.mps"
        sol = Path(tmp) / "model.sol"
        vs, names, constraint_names, _ = prob.writeMPS(str(mps), rename=1)
        run.build_seconds = time.perf_counter() - start
        cbc = pulp.PULP_CBC_CMD(msg=False)
        command = [
            cbc.path, str(mps), "-max", "-sec", f"{time_limit:g}", "-threads", str(threads),
            "-timeMode", "elapsed", "-solve", "-printingOptions", "all", "-solution", str(sol),
        ]  # fmt: skip
        cbc_start = time.perf_counter()
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            try:
                process.wait(timeout=time_limit + grace)
                stopped = ""
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                stopped = f"killed after {time_limit + grace:g} s (CBC ignored its time limit)"
        run.total_seconds = time.perf_counter() - start
        text = log.read_text("utf-8", errors="replace")
        values: dict[tuple[int, int], int] = {}
        said = "no solution file"
        if sol.exists():
            status, raw, *_ = cbc.readsol_MPS(str(sol), prob, vs, names, constraint_names)
            said = pulp.LpStatus[status]
            values = {key: round(raw.get(var.name, 0) or 0) for key, var in x.items()}
    offset = cbc_start - start  # CBC's log times count from its own start
    for value, seconds in _CBC_SOLUTION.findall(text):
        run.history.append((offset + float(seconds), abs(float(value))))
    run.history.sort()
    result = re.search(r"Result - (.+)", text)
    run.status = stopped or (f"{result.group(1).strip()} (PuLP: {said})" if result else said)
    assignment = _placed(data, values)
    if values:
        if check_assignment(data, assignment):
            run.status += " (no feasible solution read)"
        else:
            run.levels = levels_of(data, assignment)
            run.best = weighted_value(data, run.levels)
    if run.best is not None and not run.history:
        run.history.append((run.total_seconds, float(run.best)))
    return run
