"""LR_NOT_ADAPTING: a plateau scheduler that has not cut while the validation loss stalled.

Run by ``scheduler.check_scheduler`` (only for plateau schedulers) with torch's replayed
state (``plateau.plateau_state``); with Keras's rule (``Settings.semantics``) the next cut
is Keras's, one evaluation earlier than torch's.
"""

from __future__ import annotations

from ..findings import LR_NOT_ADAPTING, Finding
from ..formatting import and_list, join, lr_text, num
from ..plateau import PlateauState, keras_plateau_cuts, simulate_plateau
from ..units import Units
from .advice import compose, lower_patience, more_epochs
from .context import Context

MIN_STALL_EPOCHS = 2  # LR_NOT_ADAPTING (and VAL_FLUCTUATING): evaluation points past the best


def _next_cut(ctx: Context, st: PlateauState) -> int | None:
    """Position of the next cut if nothing improves (Keras's when the run follows its rule)."""
    return st.keras_cut_epoch if ctx.s.semantics == "keras" else st.next_cut_epoch


def not_adapting(ctx: Context, st: PlateauState, mismatched: bool) -> Finding | None:
    if st.best_epoch is None:
        return None
    cuts = ctx.cut_epochs()
    if cuts is None:  # no lr column: the simulated cuts stand in
        cuts = [ctx.epochs[i] for i, _, _ in st.cuts]
    u, e_best = ctx.u, ctx.epochs[st.best_epoch]
    if st.epochs_since_best < MIN_STALL_EPOCHS or any(c > e_best for c in cuts):
        return None
    lr_now = float(ctx.observed_lr[-1]) if ctx.observed_lr is not None else st.lr
    lr_span = (f"for all {ctx.data.n_epochs} {u.nouns} ({u.names(ctx.epochs)})" if not cuts
               else f"since the cut at {u.at(cuts[-1])}")
    after = list(range(st.best_epoch + 1, len(ctx.val)))
    prev_not_best = [ctx.epochs[i] for i in after if ctx.val[i] < ctx.val[i - 1]]
    thr, next_cut = st.improvement_threshold, _next_cut(ctx, st)
    suggestion, changes = _suggestion(ctx, next_cut)
    return Finding(
        code=LR_NOT_ADAPTING,
        severity="warning",
        title="Learning rate not adapting",
        problem=f"LR stayed at {lr_text(lr_now)} {lr_span} although the validation loss has not beaten its best "
        f"({num(st.best)}, {u.at(e_best)}) for {st.epochs_since_best} {u.nouns}.",
        evidence={
            "lr": lr_now, "patience": ctx.s.patience, "threshold": ctx.s.threshold, "best": st.best,
            "best_epoch": e_best, "improvement_threshold": thr, "num_bad_epochs": st.num_bad_epochs,
            "epochs_since_best": st.epochs_since_best, "improved_on_previous_not_best": prev_not_best,
            "next_cut_epoch": None if st.next_cut_epoch is None else u.future(st.next_cut_epoch),
            "keras_cut_epoch": None if st.keras_cut_epoch is None else u.future(st.keras_cut_epoch),
            "observed_cuts": cuts, "scheduler_mismatch": mismatched,
            **({"semantics": "keras"} if ctx.s.semantics == "keras" else {}),
        },
        evidence_text=_stall_text(ctx, st, lr_now, lr_span, after, prev_not_best),
        explanation=_explanation(ctx, st, mismatched),
        suggestion=suggestion,
        changes=changes,
        rationale="A shorter patience reacts sooner to a stalled validation loss; logging every cut "
        "(`Learning rate reduced: X -> Y (validation loss: Z)`) makes the scheduler's actions visible.",
        monitor=(f"An LR cut at {u.end_of_future(next_cut)} unless an {u.noun}'s validation loss drops below "
                 f"{num(thr)} first." if next_cut is not None else "The validation loss at the LR floor."),
    )


def _capitalized(u: Units, points: list) -> str:
    """``"Epochs 4 and 5"`` or ``"The evaluations at steps 4,000 and 5,000"``."""
    many = len(points) > 1
    names = and_list([u.number(p) for p in points])
    if u.whole_epochs:
        return f"Epoch{'s' if many else ''} {names}"
    if u.unit == "index":
        return f"Evaluation{'s' if many else ''} {names}"
    return f"The evaluation{'s' if many else ''} at {u.unit}{'s' if many else ''} {names}"


def _stall_text(ctx: Context, st: PlateauState, lr_now: float, lr_span: str, after: list[int],
                prev_not_best: list) -> list[str]:
    u, p, keras = ctx.u, ctx.s.patience, ctx.s.semantics == "keras"
    thr, next_cut = st.improvement_threshold, _next_cut(ctx, st)
    counter = (f"Keras cuts when its wait counter reaches the patience ({p})" if keras else
               f"the bad-{u.noun} counter is {st.num_bad_epochs}, and the LR is cut only when it exceeds the "
               f"patience ({p})")
    text = [
        f"LR stayed at {lr_text(lr_now)} {lr_span}.",
        f"Best validation loss {num(st.best)} at {u.at(ctx.epochs[st.best_epoch])}; to count as an improvement an "
        f"{u.noun} must be below {num(st.best)} × (1 − {ctx.s.threshold:g}) = {num(thr)}.",
        f"{st.epochs_since_best} {u.nouns} in a row ({u.names([ctx.epochs[i] for i in after])}) have not improved on "
        f"it: val loss {join(ctx.val[st.best_epoch + 1:], num)}; {counter}.",
    ]
    if prev_not_best:
        many = len(prev_not_best) > 1
        text.append(
            f"{_capitalized(u, prev_not_best)} improved on the previous {u.noun} but not on the best ({num(thr)}): "
            f"in the scheduler's eyes {'they are' if many else 'it is'} bad {u.nouns}, not progress."
        )
    if next_cut is not None:
        new_lr = max(lr_now * ctx.s.factor, ctx.s.min_lr)
        text.append(f"If nothing improves, the first cut comes at {u.end_of_future(next_cut)} "
                    f"(LR {lr_text(lr_now)} → {lr_text(new_lr)}).")
    else:
        text.append(f"The LR is at its floor (min_lr {ctx.s.min_lr:g}): no further cut is possible.")
    torch_next, keras_next = st.next_cut_epoch, st.keras_cut_epoch
    if not keras and keras_next is not None and torch_next is not None and keras_next < torch_next:
        text.append(f"Keras's ReduceLROnPlateau (cuts when its wait counter reaches patience) would cut at "
                    f"{u.end_of_future(keras_next)}, one {u.noun} earlier.")
    if keras and torch_next is not None:
        text.append(f"torch's ReduceLROnPlateau (cuts when its counter exceeds patience) would cut at "
                    f"{u.end_of_future(torch_next)}.")
    return text


def _explanation(ctx: Context, st: PlateauState, mismatched: bool) -> str:
    n = ctx.u.noun
    rule = (f"ReduceLROnPlateau compares each {n} with the best value so far, not with the previous {n}: an "
            f"{n} counts as better only below best × (1 − threshold) = {num(st.improvement_threshold)}. The "
            f"bad-{n} counter resets only on such an improvement, and the LR drops on the "
            f"{'patience-th' if ctx.s.semantics == 'keras' else '(patience+1)-th'} bad {n} in a row.")
    if mismatched:
        return (rule + " The logged LR does not follow these settings (see the scheduler-mismatch finding), so "
                "this log cannot show whether the scheduler worked as specified; replayed with these settings, "
                + ("it would not have cut yet." if _next_cut(ctx, st) is not None else "the LR is at its floor."))
    return (rule + " The scheduler is working as specified: "
            + ("it has simply not reached its cut yet." if _next_cut(ctx, st) is not None
               else "the LR is already at its floor."))


def _suggestion(ctx: Context, next_cut: int | None):
    """A lower patience (the largest that would have cut in this run), or a longer run (to the next cut)."""
    q, hint = _patience_hint(ctx)
    point = None if next_cut is None else ctx.u.future(next_cut)
    longer = None
    if point is not None and ctx.u.whole_epochs:
        longer = more_epochs(ctx, f"Or train longer: with patience {ctx.s.patience} the first cut comes at "
                                  f"{ctx.u.end_of(point)} ({point + 1} epochs).", point + 1)
    return compose(lower_patience(ctx, f"Lower the patience. {hint}", q), longer)


def _patience_hint(ctx: Context) -> tuple[int | None, str]:
    """The largest patience below the configured one that would have cut within this run, and a sentence."""
    kwargs = ctx.s.plateau_kwargs()
    for q in range(ctx.s.patience - 1, -1, -1):
        if ctx.s.semantics == "keras":
            cuts = keras_plateau_cuts(ctx.val, q, ctx.s.threshold, ctx.s.cooldown)
            first = cuts[0] if cuts else None
        else:
            lrs = simulate_plateau(ctx.val, 1.0, **{**kwargs, "patience": q})
            first = next((i for i, v in enumerate(lrs) if v < 1.0), None)
        if first is not None:
            return q, f"Patience {q} would have cut the LR at {ctx.u.end_of(ctx.epochs[first])} of this run."
    return None, "No patience value would have cut the LR within this run."


__all__ = ["MIN_STALL_EPOCHS", "not_adapting"]
