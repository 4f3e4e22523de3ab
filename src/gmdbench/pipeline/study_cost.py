"""What an active-learning study still costs: the hours its archived units really took, and the
hours its missing units need, read from the archive beside bench/run_cost.py's projection.

The projection (a few epochs timed on the quick preset, scaled by atoms) is made before a study
starts; once units are archived, their own wall times say better what the rest will take. Each
rule is priced by the *median* of its archived units, not the mean: a unit that shared the two
cores with another job (a test run, a mutation session) takes two to three times as long, and
one such unit should not move the forecast of all the others. A rule with no archived unit yet
(only possible before the first seed is complete) takes the projection of a seed shared equally
among the rules: a rough figure, said as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from statistics import median

from pydantic import BaseModel


class StudyCost(BaseModel):
    """Hours of a study on the archive's machine(s)."""

    measured_hours: float  # the archived units, as they took
    median_minutes: dict[str, float]  # per rule, over its archived units
    n_archived: int
    missing: list[tuple[str, int]]  # (rule, seed) not archived yet, in the study's order
    remaining_hours: float  # the missing units: their rule's median, else projection / rules
    unmeasured_rules: list[str]  # rules priced from the projection (no archived unit)
    ratio: float | None  # measured / projected over the complete seeds (None: none complete)
    projected_seed_hours: float  # run_cost's projection of one seed, all rules


def study_cost(rules: list[str], seeds: list[int], walls: Iterable[tuple[str, int, float]],
               projected_seed_hours: float) -> StudyCost:
    """The cost of a study of ``rules`` x ``seeds`` given the archived units' wall times
    ``walls`` as (rule, seed, seconds); ``projected_seed_hours`` is run_cost's projection of
    one seed (all rules). Units of rules or seeds outside the study are ignored."""
    seconds = {(rule, seed): wall for rule, seed, wall in walls
               if rule in rules and seed in seeds}
    by_rule: dict[str, list[float]] = {}
    for (rule, _), wall in seconds.items():
        by_rule.setdefault(rule, []).append(wall / 60)
    medians = {rule: median(minutes) for rule, minutes in by_rule.items()}
    complete = [seed for seed in seeds if all((rule, seed) in seconds for rule in rules)]
    ratio = None
    if complete and projected_seed_hours > 0:
        measured_complete = sum(seconds[rule, seed] for seed in complete for rule in rules)
        ratio = measured_complete / 3600 / (projected_seed_hours * len(complete))
    per_unit_projection = projected_seed_hours / len(rules)
    missing = [(rule, seed) for seed in seeds for rule in rules if (rule, seed) not in seconds]
    remaining = sum(medians[rule] / 60 if rule in medians else per_unit_projection
                    for rule, _ in missing)
    return StudyCost(measured_hours=sum(seconds.values()) / 3600, median_minutes=medians,
                     n_archived=len(seconds), missing=missing, remaining_hours=remaining,
                     ratio=ratio, unmeasured_rules=[rule for rule in rules
                                                    if rule not in medians],
                     projected_seed_hours=projected_seed_hours)


def cost_lines(cost: StudyCost) -> list[str]:
    """What bench/run_cost.py prints about a study already under way."""
    if not cost.n_archived:
        return ["archive: no unit yet; the projection above is all there is"]
    lines = [f"archive: {cost.n_archived} units took {cost.measured_hours:.2f} h; median per "
             "unit: " + ", ".join(f"{rule} {minutes:.1f} min"
                                  for rule, minutes in cost.median_minutes.items())]
    if cost.ratio is not None:
        lines.append(f"measured / projected over the complete seeds: {cost.ratio:.2f}x "
                     f"(projection {cost.projected_seed_hours:.2f} h per seed)")
    if cost.missing:
        first_rule, first_seed = cost.missing[0]
        priced = "each rule at its median" + (
            f"; {', '.join(cost.unmeasured_rules)} at the projection, no unit archived yet"
            if cost.unmeasured_rules else "")
        lines.append(f"remaining: {len(cost.missing)} units, ~{cost.remaining_hours:.1f} h "
                     f"({priced}; next: {first_rule} seed {first_seed})")
    else:
        lines.append("remaining: none (every unit is archived)")
    return lines
