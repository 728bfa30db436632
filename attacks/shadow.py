"""Shadow-model classifier attack (Shokri et al. 2017, arXiv 1610.05820 v2: "shadow models"
and "training the attack model").

Each reference (shadow) model r yields labelled training pairs (features(r, x), IN/OUT of x in r). A
scikit-learn classifier learns IN vs OUT from them and is applied to the target model's features.
Features per (model, example): the top-k softmax probabilities sorted in decreasing order (k = min(3, C)),
the cross-entropy loss, and a one-hot of the true label (only when C ≤ ``max_onehot_classes``; Shokri
et al. train one attack model per class, a one-hot label lets a single model condition on the class).

Score: the classifier's decision function (log-odds of IN) on the target's features; higher = member.
Deterministic: training rows are subsampled (at most ``max_train_rows``) and the classifier seeded by
``seed``.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from dpaudit._validation import check_choice, check_int

from dpaudit.attacks.base import Attack
from dpaudit.attacks.registry import register_attack
from dpaudit.attacks.signals import Signals

__all__ = ["ShadowClassifier", "shadow_features"]

CLASSIFIERS = ("hist_gradient_boosting", "logistic_regression")


def shadow_features(signals: Signals, model: int, *, top_k: int = 3,
                    max_onehot_classes: int = 32) -> np.ndarray:
    """Attack features of one model on every example, float64 of shape (N, F).

    Columns: sorted top-k softmax probabilities (decreasing), loss (nats), then one-hot label
    when C ≤ ``max_onehot_classes``.
    """
    probs = signals.softmax_row(model)
    c = signals.n_classes
    k = min(top_k, c)
    top = np.partition(probs, c - k, axis=1)[:, c - k:] if k < c else probs
    top = -np.sort(-top, axis=1)
    cols = [top, signals.loss[model][:, None]]
    if c <= max_onehot_classes:
        onehot = np.zeros((signals.n_examples, c))
        onehot[np.arange(signals.n_examples), signals.labels] = 1.0
        cols.append(onehot)
    return np.hstack(cols)


def _make_classifier(kind: str, seed: int):
    if kind == "logistic_regression":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, early_stopping=False,
                                          random_state=seed)


@register_attack("shadow")
class ShadowClassifier(Attack):
    """Shokri et al. shadow-model attack with a scikit-learn IN/OUT classifier; higher = member."""

    paper = "Shokri et al. 2017, arXiv 1610.05820"

    def __init__(self, *, classifier: str = "hist_gradient_boosting", max_train_rows: int = 200_000,
                 top_k: int = 3, max_onehot_classes: int = 32, seed: int = 0,
                 n_threads: int | None = 1) -> None:
        """Args:
            classifier: ``"hist_gradient_boosting"`` (default) or ``"logistic_regression"``.
            max_train_rows: cap on the (reference model × example) training pairs, subsampled
                uniformly with ``seed``.
            top_k: number of sorted softmax probabilities used as features.
            max_onehot_classes: include a one-hot label only up to this many classes.
            seed: seed of the subsample and the classifier.
            n_threads: OpenMP threads for the classifier (default 1; None: the library default).
                One thread is the default because an oversubscribed machine can make gradient
                boosting's OpenMP loops tens of times slower.

        Raises:
            TypeError: wrong types. ConfigError: values out of range or unknown classifier.
        """
        self.classifier = check_choice("classifier", classifier, CLASSIFIERS)
        self.max_train_rows = check_int("max_train_rows", max_train_rows, 2)
        self.top_k = check_int("top_k", top_k, 1)
        self.max_onehot_classes = check_int("max_onehot_classes", max_onehot_classes, 0)
        self.seed = check_int("seed", seed, 0)
        self.n_threads = None if n_threads is None else check_int("n_threads", n_threads, 1)

    def _features(self, signals: Signals, model: int) -> np.ndarray:
        return shadow_features(signals, model, top_k=self.top_k,
                               max_onehot_classes=self.max_onehot_classes)

    def _score(self, signals: Signals, ref_membership: np.ndarray, *, target: int,
               reference: np.ndarray) -> np.ndarray:
        n = signals.n_examples
        total = len(reference) * n
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(total, size=self.max_train_rows, replace=False)) \
            if total > self.max_train_rows else np.arange(total)
        ref_pos, example = np.divmod(rows, n)
        x_parts, y_parts = [], []
        for j, model in enumerate(reference):
            pick = example[ref_pos == j]
            if pick.size:
                x_parts.append(self._features(signals, int(model))[pick])
                y_parts.append(ref_membership[j, pick])
        x_train, y_train = np.vstack(x_parts), np.concatenate(y_parts)
        x_target = self._features(signals, target)
        if y_train.all() or not y_train.any():  # one class: nothing to learn, no signal
            return np.zeros(n)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            clf = _make_classifier(self.classifier, self.seed).fit(x_train, y_train)
            return clf.decision_function(x_target)
