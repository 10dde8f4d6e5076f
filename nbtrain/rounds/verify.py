"""Verification: every candidate against the unchanged config, paired by seed, within the budget.

The phases, each on the sweep backend (``trials.Runner``):

1. **The unchanged config** at full length on every seed (its first runs time the machine).
2. **Screen**: each candidate for ``screen_epochs`` epochs, fewer than the full run (half of
   them, fewer when the budget needs it), compared with the unchanged config's first as many
   epochs (a run's first epochs do not depend on how many follow: the same seed gives the
   same steps). The screen is shorter than the run by design: what it predicts (the round's
   expectations) is then checked on epochs it never saw. A candidate that does not win the
   screen on most seeds is rejected; of those that do, the best per knob goes on, and so does
   a change whose screen is identical to the unchanged config's (it acts later: a patience).
3. **Finalists** (at most ``MAX_FINALISTS``, by screen effect) at full length: a change counts
   as an improvement only when it wins on most seeds here too (``candidates.Comparison``).
4. **The round**: the verified changes together (one per knob, so no field is set twice),
   screened and run at full length. It is kept when it beats the unchanged config on most
   seeds and the best single change on most seeds; otherwise the round falls back to the
   best single change, and says so.

The screen keeps back time for two finalists and their combination (``plan_screen``); the
finalists keep back nothing for the combination, which may not be needed (with too little time
left for it, the round keeps the best single change and says so). A run the budget cannot
afford is not started (``Budget.may_start``), and a candidate missing a seed is "untested",
never recommended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .budget import Budget
from .candidates import REJECTED, UNTESTED, VERIFIED, Candidate, Comparison, epochs_text
from .trials import Arm, Runner

MAX_FINALISTS = 3
RESERVED_FINALISTS = 2  # the screen keeps time for this many finalists (and their combination)


def preferred_screen_epochs(epochs: int) -> int:
    """Half of the run, at least one epoch (equal to the run only for one-epoch runs)."""
    return max(1, epochs // 2)


@dataclass
class Verification:
    """What the paired runs decided: the changes of the round and the runs that show it."""

    baseline: Arm  # the unchanged config at full length
    screen_epochs: int
    chosen: list[Candidate] = field(default_factory=list)  # the changes the round makes
    final_full: Arm | None = None  # the round's config at full length (the final verification runs)
    final_screen: Arm | None = None  # the round's config at screen length (where expectations come from)
    final: Comparison | None = None  # the round vs the unchanged config at full length
    versus_best_single: Comparison | None = None  # the combination vs the best single change
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> dict:
        out: dict = {}
        for c in self.chosen:
            out.update(c.changes)
        return out


def _finals_reserve(budget: Budget, n_finalists: int, n_seeds: int, epochs: int, screen: int) -> float:
    """Seconds the finalists and the combination need (full length; the combination also screened)."""
    need = budget.phase_seconds(n_finalists * n_seeds, epochs)
    if n_finalists >= 2:
        need += budget.phase_seconds(n_seeds, screen) + budget.phase_seconds(n_seeds, epochs)
    return need


def plan_screen(budget: Budget, n_candidates: int, n_seeds: int, epochs: int, n_knobs: int,
                pending_baseline: int) -> tuple[int, int]:
    """``(screen_epochs, finalists_reserved)``: the longest screen (up to half the run) that fits
    beside the rest of the unchanged config's runs and the time kept for ``RESERVED_FINALISTS``
    finalists and their combination; with fewer finalists kept when nothing fits (more may still
    run when the budget allows: every run is checked as it starts). When even a one-epoch screen
    does not fit, it is one epoch and the budget check leaves the last candidates untested."""
    base_s = budget.phase_seconds(pending_baseline, epochs)
    for finalists in range(min(n_knobs, RESERVED_FINALISTS), 0, -1):
        for e in range(preferred_screen_epochs(epochs), 0, -1):
            need = base_s + budget.phase_seconds(n_candidates * n_seeds, e)
            if need + _finals_reserve(budget, finalists, n_seeds, epochs, e) <= budget.remaining:
                return e, finalists
    return 1, 1


def _screen(cands: list[Candidate], runner: Runner, baseline: Arm, screen: int, reserve: Callable[[], float]):
    arms = [runner.arm(c.changes, screen) for c in cands]
    runner.run([baseline, *arms], reserve)
    for c, arm in zip(cands, arms):
        comp = runner.compare(arm, baseline, screen)
        if not comp.complete:
            done = sum(s in arm.rows for s in runner.seeds)
            c.status = UNTESTED
            c.note = f"the budget ran out before its screen ({done} of {len(runner.seeds)} seeds run)"
            continue
        c.screen = comp
        if comp.identical:
            c.note = f"its first {epochs_text(screen)} are the unchanged config's: the change acts later"
        elif not comp.improvement:
            c.status, c.note = REJECTED, f"lost the screen: {comp.describe()}"
    return arms


def _finalists(cands: list[Candidate], limit: int) -> list[Candidate]:
    """The best screen winner per knob, best first, then the changes the screen could not tell apart
    (``Comparison.identical``); at most ``limit``. The rest get their note."""
    winners = sorted((c for c in cands if c.screen is not None and c.screen.improvement), key=lambda c: c.effect)
    winners += [c for c in cands if c.screen is not None and c.screen.identical]
    best: dict[str, Candidate] = {}
    for c in winners:
        if c.knob in best:
            c.status, c.note = REJECTED, f"{best[c.knob].name} did better on the same setting in the screen"
        else:
            best[c.knob] = c
    finalists = list(best.values())
    for c in finalists[limit:]:
        c.status, c.note = UNTESTED, f"passed the screen; not run at full length (at most {limit} finalists)"
    return finalists[:limit]


def _full(finalists: list[Candidate], runner: Runner, baseline: Arm, epochs: int) -> None:
    arms = [runner.arm(c.changes, epochs) for c in finalists]
    runner.run(arms)
    for c, arm in zip(finalists, arms):
        comp = runner.compare(arm, baseline, epochs)
        if not comp.complete:
            c.status, c.note = UNTESTED, "passed the screen; the budget ran out before its full-length runs"
        elif comp.improvement:
            c.full, c.status, c.note = comp, VERIFIED, f"verified: {comp.describe()}"
        else:
            c.full, c.status, c.note = comp, REJECTED, f"passed the screen, lost at full length: {comp.describe()}"


def _single(v: Verification, best: Candidate, runner: Runner, epochs: int) -> None:
    v.chosen = [best]
    v.final_full = runner.arm(best.changes, epochs)
    v.final_screen = runner.arm(best.changes, v.screen_epochs)
    v.final = best.full


def _combine(v: Verification, verified: list[Candidate], runner: Runner, epochs: int) -> None:
    best = verified[0]
    changes: dict = {}
    for c in verified:
        changes.update(c.changes)
    screen_arm, full_arm = runner.arm(changes, v.screen_epochs), runner.arm(changes, epochs)
    runner.run([screen_arm, full_arm])
    names = " + ".join(c.name for c in verified)
    comp = runner.compare(full_arm, v.baseline, epochs)
    versus = runner.compare(full_arm, runner.arm(best.changes, epochs), epochs)
    if not (comp.complete and screen_arm.finished(runner.seeds)):
        _single(v, best, runner, epochs)
        v.notes.append(f"The combination ({names}) could not be verified within the budget: the round keeps the "
                       f"best single change, {best.name}.")
        return
    if comp.improvement and versus.improvement:
        v.chosen, v.final_full, v.final_screen = verified, full_arm, screen_arm
        v.final, v.versus_best_single = comp, versus
        v.notes.append(f"The verified changes together ({names}): {comp.describe()} against the unchanged config, "
                       f"and won {versus.wins} of {len(versus.seeds)} seeds against {best.name} alone.")
        return
    _single(v, best, runner, epochs)
    v.versus_best_single = versus
    v.notes.append(f"The combination ({names}) lost: {comp.describe()} against the unchanged config, won "
                   f"{versus.wins} of {len(versus.seeds)} seeds against {best.name} alone. The round falls back "
                   f"to the best single change, {best.name}.")


def verify(cands: list[Candidate], runner: Runner, epochs: int) -> Verification:
    """Run the phases (see the module docstring) and decide the round's changes."""
    budget, seeds = runner.budget, runner.seeds
    baseline = runner.arm({}, epochs)
    if not cands:
        return Verification(baseline, preferred_screen_epochs(epochs))
    runner.run([baseline], seeds=seeds[: budget.workers])  # these runs time the machine
    knobs = len({c.knob for c in cands})
    screen, reserved = plan_screen(budget, len(cands), len(seeds), epochs, knobs,
                                   sum(s not in baseline.rows for s in seeds))
    v = Verification(baseline, screen)
    _screen(cands, runner, baseline, screen,
            lambda: _finals_reserve(budget, reserved, len(seeds), epochs, screen))
    if not baseline.finished(seeds):
        v.notes.append("The unchanged config could not be trained on every seed within the budget: nothing can be "
                       "compared, so nothing is recommended.")
        for c in cands:  # without the unchanged config's runs no comparison is complete
            c.status, c.note, c.screen = UNTESTED, "no paired runs of the unchanged config to compare with", None
        return v
    finalists = _finalists(cands, MAX_FINALISTS)
    if screen >= epochs:  # a one-epoch run: the screen was the full run
        for c in finalists:
            c.full = c.screen
            c.status, c.note = (VERIFIED, "verified") if c.screen.improvement else (REJECTED, "lost")
            c.note += f": {c.screen.describe()}"
    else:
        _full(finalists, runner, baseline, epochs)
    verified = sorted((c for c in finalists if c.status == VERIFIED), key=lambda c: c.full.effect)
    if len(verified) == 1:
        _single(v, verified[0], runner, epochs)
    elif verified:
        _combine(v, verified, runner, epochs)
    return v


__all__ = ["MAX_FINALISTS", "Verification", "plan_screen", "preferred_screen_epochs", "verify"]
