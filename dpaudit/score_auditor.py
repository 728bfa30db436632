"""``ScoreAuditor``: one object per set of membership scores, one method per estimator.

Built once from the minimal data every estimator needs — one score per example (HIGHER = MEMBER) and
whether each example was included (trained on) — and validated once; each method is then one estimator
of :mod:`dpaudit.privacy` or one metric of :mod:`dpaudit.attacks.metrics`. After jax_privacy's
``CanaryScoreAuditor`` (``auditing.py``).

Which estimator fits which experiment:

* :meth:`ScoreAuditor.epsilon_one_run` (bound) and :meth:`ScoreAuditor.epsilon_one_run_fdp` (estimate):
  the scores of canaries of ONE training run, each included independently with probability ½;
* :meth:`ScoreAuditor.epsilon_clopper_pearson`: each score from its own, independently trained run;
* :meth:`ScoreAuditor.auc`, :meth:`ScoreAuditor.tpr_at_fpr`, :meth:`ScoreAuditor.roc`: attack quality,
  no privacy statement.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dpaudit._validation import check_mask, check_real
from dpaudit.errors import DataError
from dpaudit.privacy.empirical import EmpiricalEpsilon
from dpaudit.privacy.thresholds import Split, ThresholdStrategy

__all__ = ["ScoreAuditor"]


class ScoreAuditor:
    """Membership scores of N examples and which of them were members.

    Args:
        scores: float array-like of shape (N,), N ≥ 1, finite or ±inf. **Higher means "member"**: negate
            a loss (or any score where lower means member) before passing it.
        included: bool array of shape (N,): True for examples that were trained on (IN). Not cast: an
            int 0/1 array is refused.

    Raises:
        DataError: scores not 1-D numbers, empty, or holding NaN (one line, with the first NaN's
            index: drop or score those examples; NaN has no rank); ``included`` not a bool array of
            the same shape.
    """

    def __init__(self, scores: npt.ArrayLike, included: npt.ArrayLike) -> None:
        try:
            s = np.array(scores, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataError(f"scores must be numbers, got {type(scores).__name__} ({err}).") from None
        if s.ndim != 1 or s.size == 0:
            raise DataError(f"scores must be 1-D with ≥ 1 score (one per example), got shape={s.shape}.")
        inc = np.array(check_mask("included", included, s.shape,
                                  hint="scores and included must be 1-D of equal length"))
        nan = np.flatnonzero(np.isnan(s))
        if nan.size:
            raise DataError(f"scores hold {nan.size} NaN value(s), first at index {int(nan[0])}; drop or "
                            f"rescore those examples (NaN has no rank).")
        s.flags.writeable = inc.flags.writeable = False
        self._scores, self._included = s, inc
        self._metrics = None

    @property
    def scores(self) -> np.ndarray:
        """The scores, float64 (N,), read-only."""
        return self._scores

    @property
    def included(self) -> np.ndarray:
        """The membership, bool (N,), read-only."""
        return self._included

    def epsilon_one_run(self, *, num_guesses_in: int, num_guesses_out: int, delta: float,
                        significance: float = 0.05) -> EmpiricalEpsilon:
        """ε lower bound (nats) of a one-run audit, any (ε, δ)-DP mechanism (arXiv 2305.08846v1, Theorem 3).

        Guesses IN for the ``num_guesses_in`` highest scores and OUT for the ``num_guesses_out`` lowest;
        valid with probability ≥ 1 − ``significance`` if each example was included independently with
        probability ½ and the guess counts were fixed before the scores were seen.

        Args:
            num_guesses_in: k₊ ≥ 0; num_guesses_out: k₋ ≥ 0, k₊ + k₋ ≤ N.
            delta: δ in [0, 1).
            significance: allowed probability that the bound is wrong (one minus confidence), in (0, 1).
        """
        return self._one_run("one_run", num_guesses_in, num_guesses_out, delta, significance)

    def epsilon_one_run_fdp(self, *, num_guesses_in: int, num_guesses_out: int, delta: float,
                            significance: float = 0.05) -> EmpiricalEpsilon:
        """ε ESTIMATE (nats) of a one-run audit under the Gaussian trade-off (arXiv 2410.22235v1, Section 4).

        Same guesses as :meth:`epsilon_one_run`; the result has ``kind="estimate"``: it lower-bounds ε only
        for mechanisms whose trade-off curve is Gaussian (its ``assumption`` says so), and is never gated.
        δ = 0 gives an inconclusive result.
        """
        return self._one_run("one_run_fdp", num_guesses_in, num_guesses_out, delta, significance)

    def _one_run(self, name: str, k_in: int, k_out: int, delta: float, significance: float) -> EmpiricalEpsilon:
        from dpaudit.privacy.one_run import one_run_audit

        return one_run_audit(self._scores, self._included, num_guesses_in=k_in, num_guesses_out=k_out,
                             delta=delta, significance=significance, estimators=(name,))

    def epsilon_clopper_pearson(self, *, delta: float, significance: float = 0.05,
                                strategy: ThresholdStrategy = Split()) -> EmpiricalEpsilon:
        """Clopper–Pearson ε lower bound (nats) of the threshold attack "IN when score ≥ t"
        (arXiv 2101.04535v1, Section 2), valid with probability ≥ 1 − ``significance``.

        **Assumes each score comes from its own, independently trained run** (binomial counts); scores of
        many examples under one model do not: use :meth:`epsilon_one_run` there. ``strategy`` chooses t
        (:class:`~dpaudit.privacy.thresholds.Split` by default: chosen on one part, counted on the other).
        """
        from dpaudit.privacy.lower_bounds import epsilon_lower_bound

        return epsilon_lower_bound(self._scores[self._included], self._scores[~self._included], delta=delta,
                                   significance=significance, strategy=strategy)

    def _metrics_of(self, fprs: tuple[float, ...] = ()):
        from dpaudit.attacks.metrics import compute_metrics

        if fprs:
            return compute_metrics(self._scores, self._included, fprs=fprs)
        if self._metrics is None:
            self._metrics = compute_metrics(self._scores, self._included)
        return self._metrics

    def _checked_metrics(self, fprs: tuple[float, ...] = ()):
        m = self._metrics_of(fprs)
        if m.status != "ok":
            raise DataError(f"the attack metrics need members and non-members: {m.reason}")
        return m

    def auc(self) -> float:
        """Area under the ROC curve, in [0, 1] (0.5: chance).

        Raises:
            DataError: only members or only non-members.
        """
        return float(self._checked_metrics().auc)

    def tpr_at_fpr(self, fpr: float) -> float | None:
        """Largest TPR over ROC points with FPR ≤ ``fpr`` (in (0, 1]); ``None`` when there are too few
        non-members to resolve that FPR (fewer than :func:`dpaudit.attacks.membership.required_nonmembers`).

        Raises:
            DataError: only members or only non-members.
        """
        f = check_real("fpr", fpr, 0.0, 1.0, closed="right")
        return self._checked_metrics((f,)).tpr_at_fpr[0].tpr

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """``(fpr, tpr)``: the full ROC curve, float64 arrays, non-decreasing in fpr, from (0, 0) to (1, 1).

        Raises:
            DataError: only members or only non-members.
        """
        m = self._checked_metrics()
        return m.fpr.copy(), m.tpr.copy()
