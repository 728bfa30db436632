"""``run_mechanism_check``: a valid white-box ε lower bound for dpaudit's own DP step, beside the claim.

Experiment. :class:`~dpaudit.verify.canaries.CanaryTrainer` trains one model on real data through the
trainer's own sampling, clipping, noise and division, with ``m`` canaries (pseudo-examples whose gradient is
``10·C·u_j``, u_j a unit vector of their own spread over P = 4 bank tables, so that only a clipping of the
whole per-sample gradient lets exactly C through). A fixed set of ``n_in`` canaries is in the training set;
the other ``n_out`` never are. The auditor sees every noisy update (white-box: the threat model of the
accountant) and projects it on u_j at every step, ``y_j = (y_j1, …, y_jT)`` in units of C.

Why each canary is an independent run of exactly the accountant's mechanism. Under a correct
implementation, canary j is drawn at each step by its own Bernoulli(q) (Poisson sampling draws every
example independently), clipped as a whole to norm C (all-layer clipping: one factor ``C/‖g‖`` for all its
tables), and u_j carries only canary j's clipped gradient plus the projection of the isotropic
N(0, σ²C² I) noise, which is N(0, σ²C²) and independent across the orthonormal u_j and across steps; real
examples and the other canaries have gradient exactly 0 along u_j. So the views ``y_j`` are mutually
independent, and ``y_j`` is the T-fold Poisson-subsampled Gaussian mechanism on a neighbouring pair with
sensitivity exactly C — the dominating pair the accountant (PRV or RDP) analyses for add/remove of one
example (Zhu, Dong, Wang 2022, arXiv 2106.08567, Section 5). Hence any test that decides IN/OUT from
``y_j`` has FPR + e^ε·FNR ≥ 1 − δ and e^ε·FPR + FNR ≥ 1 − δ (Kairouz et al., arXiv 1311.0776, Theorem 2.1)
for the claimed (ε, δ) — whatever statistic of ``y_j`` it uses.

Statistic and bound. Three pre-registered tests, Bonferroni-combined (:data:`SHARES` of the significance;
:func:`epsilon_from_views`). (1) The exact (Neyman–Pearson optimal) log-likelihood ratio of the claimed
mechanism, ``Λ(y) = Σ_t log(1 − q + q·exp((2y_t − 1)/(2σ²)))`` (IN vs OUT; σ, q as claimed), thresholded at
a value chosen on a SIMULATION of the claimed mechanism with as many canaries (never on the observed ones),
so the observed counts at that threshold are binomial given the fixed group sizes. (2) A broken
implementation moves the score distributions away from where that threshold was tuned, so a split-sample
test picks among Λ for (q, σ), (q, σ/2), (2q, σ) and a threshold on a random half of the canaries (fixed
seed, independent of the data) and counts errors on the other half. (3) Across steps: the differences of
consecutive views ``d_t = y_{t+1} − y_t`` are ``b_{t+1} − b_t + N(0, 2σ²)`` under the claim; noise reused
(or correlated) across steps cancels in them, leaving OUT canaries at exactly (nearly) 0. Statistics
``max_t |d_t|`` and ``Σ_t d_t²``, chosen with a threshold on the same random half, counted on the other.
For each test, one-sided Clopper–Pearson upper bounds on FPR and FNR, each at half its share, give ε_LB =
max{log((1 − δ − FPR̄)/FNR̄), log((1 − δ − FNR̄)/FPR̄), 0} (Nasr et al., "Tight Auditing of Differentially
Private Machine Learning", USENIX Security 2023, Section 4; :func:`dpaudit.privacy.clopper_pearson_epsilon`);
the largest of the three is valid with probability ≥ 1 − significance. δ enters once, per canary, as in one
(ε, δ) claim about one example; it is not multiplied by the number of canaries (contrast the one-run bound
of Steinke et al., arXiv 2305.08846, Theorem 3, whose δ term grows as 2mδ because its canaries share one
run's randomness — ours do not, by construction).

A bound above the claimed ε is a proof, at the stated confidence, that the code does not implement the
mechanism the accountant was told about (σ smaller, clipping bypassed or per table, q larger, noise reused
across steps, or noise the auditor can regenerate: with seeded noise whose seed is published, the auditor
subtracts the regenerated noise).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from dpaudit.errors import ConfigError
from dpaudit.privacy._clopper_pearson import cp_epsilon
from dpaudit.report_schema import MechanismCheck
from dpaudit.trainers.randomness import SeededRandom
from dpaudit.verify.canaries import PLANES, CanaryTrainer, add_canary_tables, project

METHOD = ("canaries spread over 4 bank tables in dpaudit's own training step, white-box; exact likelihood-ratio test "
          "of the claimed Poisson-subsampled Gaussian, threshold fixed on a simulation of the claim, plus split-sample "
          "tests of (q, sigma/2) and (2q, sigma) alternatives and of step-to-step differences (noise reuse), "
          "Bonferroni; Clopper-Pearson on independent canaries (Nasr et al. 2023)")
#: Default number of canaries and the fraction of them in the training set.
DEFAULT_CANARIES = 20_000
DEFAULT_IN_FRACTION = 0.5
_GRID = 4001  # candidate thresholds (quantiles of the simulated scores)
#: Shares of the significance: primary (claim-tuned Λ), split-sample alternatives, split-sample cross-step test.
SHARES = (0.9, 0.05, 0.05)


def log_likelihood_ratio(y: np.ndarray, *, sample_rate: float, sigma: float) -> np.ndarray:
    """Λ per canary for views ``y`` (m, T) in units of C: IN (mixture) vs OUT (N(0, σ²)), claimed q and σ."""
    a = (2.0 * y - 1.0) / (2.0 * sigma * sigma)
    if sample_rate >= 1.0:
        return a.sum(axis=1)
    return np.logaddexp(math.log1p(-sample_rate), math.log(sample_rate) + a).sum(axis=1)


def _counts(scores: np.ndarray, included: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    ins, outs = np.sort(scores[included]), np.sort(scores[~included])
    tp = len(ins) - np.searchsorted(ins, thresholds, side="left")
    fp = len(outs) - np.searchsorted(outs, thresholds, side="left")
    return tp, len(ins) - tp, fp, len(outs) - fp


def simulated_threshold(included: np.ndarray, *, steps: int, sample_rate: float, sigma: float, delta: float,
                        significance: float, seed: int) -> float:
    """The threshold that maximises the Clopper–Pearson ε_LB on a simulation of the CLAIMED mechanism."""
    rng = np.random.default_rng(seed)
    drawn = (rng.random((len(included), steps)) < sample_rate) & included[:, None]
    y = drawn + sigma * rng.standard_normal((len(included), steps))
    scores = log_likelihood_ratio(y, sample_rate=sample_rate, sigma=sigma)
    return _best_threshold(scores, included, delta=delta, significance=significance)[0]


def _best_threshold(scores: np.ndarray, included: np.ndarray, *, delta: float,
                    significance: float) -> tuple[float, float]:
    """``(threshold, ε_LB)`` maximising the Clopper–Pearson ε_LB over a quantile grid of ``scores``."""
    grid = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, _GRID)))
    eps = cp_epsilon(*_counts(scores, included, grid), delta=delta, significance=significance)
    best = int(np.argmax(eps))
    return float(grid[best]), float(eps[best])


def _split_test(statistics, included: np.ndarray, select: np.ndarray, *, delta: float, tune: float,
                significance: float) -> float:
    """ε_LB of the statistic and threshold that maximise ε_LB on the canaries ``select``, counted on the rest.

    Args:
        statistics: score arrays (m,), larger = IN; chosen among on ``select`` only.
        tune: the significance the selection optimises for (a tuning choice, not spent).
        significance: spent on the held-out counts.
    """
    picked = max(((scores,) + _best_threshold(scores[select], included[select], delta=delta, significance=tune)
                  for scores in statistics), key=lambda c: c[2])
    counts = _counts(picked[0][~select], included[~select], np.asarray([picked[1]]))
    return float(cp_epsilon(*counts, delta=delta, significance=significance)[0])


def cross_step_statistics(views: np.ndarray) -> list[np.ndarray]:
    """``max_t |d_t|`` and ``Σ_t d_t²`` of the step-to-step differences ``d = y_{t+1} − y_t`` (m, T−1); none
    for T = 1. Under the claim d carries fresh noise N(0, 2σ²); reused noise cancels, OUT canaries give 0."""
    if views.shape[1] < 2:
        return []
    d = np.diff(views, axis=1)
    return [np.abs(d).max(axis=1), (d * d).sum(axis=1)]


def epsilon_from_views(views: np.ndarray, included: np.ndarray, *, sample_rate: float, sigma: float, delta: float,
                       significance: float, seed: int) -> float:
    """ε_LB from canary views (m, T) in units of C and their inclusion, valid with prob. ≥ 1 − significance.

    Three pre-registered tests, Bonferroni-combined with :data:`SHARES` of the significance (the largest
    bound is reported):

    * primary (tight for a correct implementation): Λ of the claimed (q, σ) on all canaries, threshold
      from a simulation of the claim (:func:`simulated_threshold`);
    * alternatives (implementations that differ from the claim, where the claim's threshold is in the
      wrong place): Λ for (q, σ), (q, σ/2) and (2q, σ) by :func:`_split_test` on a random half (``seed``);
    * cross-step (noise reused or correlated across steps): :func:`cross_step_statistics` by
      :func:`_split_test` on the same half (0 for a single step).
    """
    a1, a2, a3 = (significance * s for s in SHARES)
    threshold = simulated_threshold(included, steps=views.shape[1], sample_rate=sample_rate, sigma=sigma,
                                    delta=delta, significance=a1, seed=seed)
    scores = log_likelihood_ratio(views, sample_rate=sample_rate, sigma=sigma)
    primary = float(cp_epsilon(*_counts(scores, included, np.asarray([threshold])), delta=delta, significance=a1)[0])
    select = np.random.default_rng([seed, 1]).random(len(included)) < 0.5
    family = [(sample_rate, sigma), (sample_rate, sigma / 2.0), (min(1.0, 2.0 * sample_rate), sigma)]
    alternatives = _split_test([log_likelihood_ratio(views, sample_rate=q, sigma=s) for q, s in family], included,
                               select, delta=delta, tune=a1, significance=a2)
    steps = cross_step_statistics(views)
    cross = _split_test(steps, included, select, delta=delta, tune=a1, significance=a3) if steps else 0.0
    return max(primary, alternatives, cross)


def _published_noise(trainer: CanaryTrainer, seed: int, std: float) -> np.ndarray:
    """(T, m) the canary coordinates of the seeded noise, regenerated from the published seed (in units of C)."""
    sizes = [s.param[0].numel() for s in trainer.agg.slots]
    offset = sum(sizes) - PLANES * trainer.m  # canary tables are the last slots
    src = SeededRandom(seed)
    rows = [src.gaussian(sum(sizes), std, step=t)[offset:] for t in range(len(trainer.observed))]
    return project(np.stack(rows)) / trainer.canary_threshold


def _load_inputs(cfg):
    """``(backbone, encoded population, labels, classes)`` of ``cfg``, loaded as ``dpaudit train`` loads them
    (:func:`dpaudit.data.load_configured_dataset`: the same columns, split and subset, hence the same N)."""
    from dpaudit.data import load_configured_dataset
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts

    ds = load_configured_dataset(cfg)
    backbone, tokenizer, _ = load_backbone(cfg.model.path)
    encoded = EncodedTexts.from_dataset(ds, tokenizer, max_length=cfg.data.max_length)
    return backbone, encoded, ds.labels, ds.num_classes


def _check_args(cfg, num_canaries: int, in_fraction: float, significance: float) -> None:
    if isinstance(num_canaries, bool) or not isinstance(num_canaries, int) or num_canaries < 2:
        raise ConfigError(f"num_canaries must be in [2, inf), got num_canaries={num_canaries!r}.")
    if not 0.0 < in_fraction < 1.0:
        raise ConfigError(f"in_fraction must be in (0, 1), got in_fraction={in_fraction!r}.")
    if not 0.0 < significance < 1.0:
        raise ConfigError(f"significance must be in (0, 1), got significance={significance!r}.")
    if cfg.privacy.non_private:
        raise ConfigError("privacy.non_private = true claims no ε: there is nothing to verify; set privacy.epsilon.")
    if cfg.clipping.mode != "all_layer":
        raise ConfigError(f"clipping.mode must be in {{all_layer}} for `dpaudit verify`, got mode={cfg.clipping.mode!r}"
                          f" (a canary reads exactly C only with a share in every clipping group, and the model's "
                          f"groups are real examples' coordinates); verify with --set clipping.mode=all_layer.")


def _train_split(cfg, n: int) -> np.ndarray:
    """The training ids of the split ``dpaudit train`` makes: the same size, hence the same q and ε."""
    from dpaudit.trainers.recipe import train_holdout_split

    return train_holdout_split(cfg, n)[0]


def _add_remove_epsilon(plan, steps: int) -> float:
    """ε of (σ, q, steps, δ) for add/remove neighbours: what the canary test is (one canary in or out).

    The claim may be replace-one (docs/design.md, "Release boundary"), which is larger; the same mechanism is
    also (ε_AR, δ)-DP for add/remove, so a canary bound above ε_AR proves the step wrong just as well, and
    comparing with the smaller ε keeps the check as sharp as before replace-one.
    """
    import math

    from dpaudit.privacy import compute_epsilon

    if plan.non_private:
        return math.inf
    return compute_epsilon(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=steps,
                           delta=plan.delta, accountant=plan.accountant, neighbouring="add_remove")


def run_mechanism_check(cfg, *, num_canaries: int = DEFAULT_CANARIES, in_fraction: float = DEFAULT_IN_FRACTION,
                        significance: float = 0.05, seed_published: bool | None = None, backbone=None,
                        encoded=None, labels=None, members: np.ndarray | None = None,
                        privacy: tuple | None = None) -> MechanismCheck:
    """Run the white-box canary check for ``cfg`` (as ``dpaudit train`` would train it) and bound ε.

    Args:
        cfg: a resolved :class:`dpaudit.config.Config` (data, model, privacy, clipping, optim, train).
        num_canaries: m canaries (independent runs of the mechanism).
        in_fraction: fraction of canaries in the training set (chosen by the check, fixed in advance).
        significance: 1 − confidence of ε_LB.
        seed_published: the auditor knows the noise seed (default: whenever ``train.noise = "seeded"``; a
            seeded run records its seed in its files). False: treat seeded noise as secret (tests).
        backbone, encoded, labels: a backbone module, its tokenised population and labels, already loaded
            (tests, the audit pipeline); default: the model and data of ``cfg``, loaded here.
        members: indices of the real training examples (the audit pipeline passes its target's); default: a
            split of the ``dpaudit train`` size (``data.holdout_fraction`` held out), so q and the claimed ε
            are those of ``dpaudit train`` with the same config.
        privacy: ``(TrainSettings, PrivacyPlan)`` to check instead of resolving them from ``cfg`` for
            ``members`` (the audit pipeline passes its bank's, so the check states the report's exact claim).

    Returns:
        The :class:`~dpaudit.report_schema.MechanismCheck`.
    """
    from dpaudit.trainers.recipe import build_classifier, released_seed, resolve_device, resolve_privacy

    _check_args(cfg, num_canaries, in_fraction, significance)
    started = time.perf_counter()
    classes = None
    if backbone is None:
        backbone, encoded, labels, classes = _load_inputs(cfg)
    labels = np.asarray(labels)
    members = _train_split(cfg, len(encoded)) if members is None else np.asarray(members, dtype=np.int64)
    settings, plan = resolve_privacy(cfg, [len(members)]) if privacy is None else privacy
    steps = plan.steps if plan.max_steps is None else min(plan.steps, plan.max_steps)
    settings = dataclasses.replace(settings, sample_rate=plan.sample_rate, steps=steps)
    clf = build_classifier(backbone, cfg, num_models=1, num_labels=classes or int(labels.max()) + 1,
                           device=resolve_device(cfg.train.device))
    slots = add_canary_tables(clf, num_canaries)
    included = np.zeros(num_canaries, dtype=bool)
    included[: int(round(in_fraction * num_canaries))] = True
    seed = released_seed(cfg, cfg.train.seed)
    trainer = CanaryTrainer(clf, encoded, labels, settings, members=members, included=included, canary_slots=slots,
                            seed=seed)
    trainer.run(resume=False)
    views = np.stack(trainer.observed)  # (T, m)
    published = (seed is not None) if seed_published is None else bool(seed_published and seed is not None)
    if published:
        views = views - _published_noise(trainer, seed, plan.noise_multiplier * trainer.canary_threshold)
    eps_lb = epsilon_from_views(views.T, included, sample_rate=plan.sample_rate, sigma=plan.noise_multiplier,
                                delta=plan.delta,
                                significance=significance, seed=int(cfg.train.seed) + 1)
    claimed = _add_remove_epsilon(plan, steps)
    return MechanismCheck(
        claimed_epsilon=float(claimed), delta=float(plan.delta), epsilon_lower_bound=eps_lb,
        confidence=1.0 - significance, num_canaries=num_canaries, num_included=int(included.sum()), steps=steps,
        sample_rate=float(plan.sample_rate), noise_multiplier=float(plan.noise_multiplier),
        tightness=eps_lb / claimed, passed=bool(eps_lb <= claimed), method=METHOD,
        noise="seeded" if seed is not None else "secure", seed_published=published,
        wall_time_s=time.perf_counter() - started)
