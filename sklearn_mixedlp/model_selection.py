"""Cross-validation and scoring for partially labeled data.

scikit-learn's splitters put unlabeled rows (``y == -1``) into test folds
and its default scoring counts ``-1`` as a class (scikit-learn issue
#2593), so cross-validating a semi-supervised estimator with them measures
the wrong thing. This module provides

- :class:`SemiSupervisedKFold`, which tests on labeled rows only and keeps
  every unlabeled row in every training set;
- :func:`labeled_accuracy_score` and :func:`make_semi_supervised_scorer`,
  which score only the rows whose true label is not ``-1``;
- :func:`class_disjoint_split`, the class-disjoint train / validation / test
  protocol used for retrieval benchmarks.

Unlabeled rows are those whose label is ``-1`` (as in
:mod:`sklearn.semi_supervised`), the string ``"-1"``, None or NaN: the one
definition of :func:`sklearn_mixedlp.datasets.unlabeled_mask`, shared with
the estimators, so that a split or a score never treats an unlabeled row
as a class.
"""

import numbers
import warnings

import numpy as np
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import BaseCrossValidator, KFold, StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._utils import unlabeled_mask

__all__ = [
    "SemiSupervisedKFold",
    "class_disjoint_split",
    "labeled_accuracy_score",
    "make_semi_supervised_scorer",
]


def _labeled_mask(y):
    """Boolean mask of the labeled rows of 1-d array ``y`` (see
    :func:`~sklearn_mixedlp.datasets.unlabeled_mask`)."""
    return ~unlabeled_mask(y)


def _check_y(y, name="y"):
    if y is None:
        raise ValueError(
            f"{name} is required: a 1-d array of labels with unlabeled rows "
            f"marked -1; got None."
        )
    if not hasattr(y, "dtype"):
        # A list such as ["cat", -1] would become the strings ["cat", "-1"].
        arr = np.asarray(y)
        y = np.asarray(y, dtype=object) if arr.dtype.kind in "US" else arr
    return column_or_1d(y, warn=True)


class SemiSupervisedKFold(BaseCrossValidator):
    """K-fold splitter that tests on labeled rows only.

    Only the labeled rows (``y != -1``) are split into ``n_splits`` folds
    (stratified by class by default). Each split trains on *all* unlabeled
    rows plus the other labeled folds and tests on the held-out labeled
    fold, so every labeled row is tested exactly once and no unlabeled row
    is ever tested.

    Use it with :func:`make_semi_supervised_scorer` (or any scorer) in
    :func:`~sklearn.model_selection.cross_val_score` or
    :class:`~sklearn.model_selection.GridSearchCV` for estimators such as
    :class:`~sklearn.semi_supervised.LabelSpreading` that take unlabeled
    rows marked ``-1``.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    shuffle : bool, default=False
        Whether to shuffle the labeled rows (within each class when
        ``stratify``) before splitting them.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffling when ``shuffle`` is True; must be None
        otherwise.
    stratify : bool, default=True
        Split the labeled rows with
        :class:`~sklearn.model_selection.StratifiedKFold` (True) or
        :class:`~sklearn.model_selection.KFold` (False).

    See Also
    --------
    make_semi_supervised_scorer : Scorer that ignores unlabeled rows.

    Notes
    -----
    With ``stratify=True``, as with
    :class:`~sklearn.model_selection.StratifiedKFold`, a ``UserWarning`` is
    issued when a class has fewer labeled rows than ``n_splits``, and a
    ``ValueError`` is raised when every class does.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.model_selection import SemiSupervisedKFold
    >>> y = np.array([0, 0, 1, 1, -1, -1])
    >>> X = np.zeros((6, 1))
    >>> cv = SemiSupervisedKFold(n_splits=2)
    >>> for train, test in cv.split(X, y):
    ...     print(train, test)
    [1 3 4 5] [0 2]
    [0 2 4 5] [1 3]
    """

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None, stratify=True):
        if not isinstance(n_splits, numbers.Integral) or isinstance(n_splits, bool):
            # ValueError, as scikit-learn's KFold raises.
            raise ValueError(  # noqa: TRY004
                f"n_splits must be an integer, got {n_splits!r} of type "
                f"{type(n_splits).__name__}."
            )
        if n_splits < 2:
            raise ValueError(
                f"k-fold cross-validation requires at least one train/test "
                f"split by setting n_splits=2 or more, got n_splits={n_splits}."
            )
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False; got {shuffle!r}.")
        if not shuffle and random_state is not None:
            raise ValueError(
                "Setting a random_state has no effect since shuffle is False. "
                "Leave random_state to its default (None), or set shuffle=True."
            )
        if not isinstance(stratify, (bool, np.bool_)):
            raise TypeError(f"stratify must be True or False; got {stratify!r}.")
        self.n_splits = int(n_splits)
        self.shuffle = bool(shuffle)
        self.random_state = random_state
        self.stratify = bool(stratify)

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splits, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object
            Ignored, for API compatibility.

        Returns
        -------
        n_splits : int
        """
        return self.n_splits

    def split(self, X, y, groups=None):
        """Generate train / test indices.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; only its length is used.
        y : array-like of shape (n_samples,)
            Labels, with unlabeled rows marked ``-1`` (or ``"-1"``, None, NaN).
        groups : object
            Ignored, for API compatibility.

        Yields
        ------
        train : ndarray of int
            Sorted indices of all unlabeled rows and of the labeled rows
            outside the test fold.
        test : ndarray of int
            Sorted indices of the labeled rows of the test fold.

        Raises
        ------
        ValueError
            If ``y`` is None, its length differs from that of ``X``, there
            are fewer labeled rows than ``n_splits``, or (when stratifying)
            every class has fewer labeled rows than ``n_splits``.
        """
        y = _check_y(y)
        check_consistent_length(X, y)
        labeled = _labeled_mask(y)
        labeled_idx = np.flatnonzero(labeled)
        unlabeled_idx = np.flatnonzero(~labeled)
        n_labeled = labeled_idx.shape[0]
        if n_labeled < self.n_splits:
            raise ValueError(
                f"Cannot have number of splits n_splits={self.n_splits} greater "
                f"than the number of labeled rows (y != -1): {n_labeled} of "
                f"{y.shape[0]} rows are labeled."
            )
        y_labeled = y[labeled_idx]
        dummy_X = np.zeros((n_labeled, 1))
        if self.stratify:
            self._check_class_counts(y_labeled)
            splitter = StratifiedKFold(
                self.n_splits, shuffle=self.shuffle, random_state=self.random_state
            )
            with warnings.catch_warnings():
                # Already reported, in terms of labeled rows, above.
                warnings.filterwarnings(
                    "ignore", message="The least populated class", category=UserWarning
                )
                folds = list(splitter.split(dummy_X, y_labeled))
        else:
            splitter = KFold(
                self.n_splits, shuffle=self.shuffle, random_state=self.random_state
            )
            folds = splitter.split(dummy_X)
        for train_lab, test_lab in folds:
            train = np.sort(np.concatenate([unlabeled_idx, labeled_idx[train_lab]]))
            test = np.sort(labeled_idx[test_lab])
            yield train, test

    def _check_class_counts(self, y_labeled):
        try:
            _, counts = np.unique(y_labeled, return_counts=True)
        except TypeError as exc:
            raise ValueError(
                "The labeled classes of y cannot be sorted; do not mix types "
                "of labels (other than the -1 that marks unlabeled rows)."
            ) from exc
        if np.all(self.n_splits > counts):
            raise ValueError(
                f"n_splits={self.n_splits} cannot be greater than the number of "
                f"labeled rows in each class (largest class has "
                f"{counts.max()})."
            )
        if self.n_splits > counts.min():
            warnings.warn(
                f"The least populated class has only {counts.min()} labeled "
                f"rows, which is less than n_splits={self.n_splits}.",
                UserWarning,
            )


def _labeled_score(score_func, y_true, y_pred, **kwargs):
    y_true = _check_y(y_true, "y_true")
    y_pred = column_or_1d(y_pred, warn=True)
    sample_weight = kwargs.get("sample_weight")
    check_consistent_length(
        y_true, y_pred, *([] if sample_weight is None else [sample_weight])
    )
    mask = _labeled_mask(y_true)
    if not mask.any():
        raise ValueError(
            "y_true has no labeled row (every label is -1); the score is undefined."
        )
    if sample_weight is not None:
        kwargs["sample_weight"] = np.asarray(sample_weight)[mask]
    return score_func(y_true[mask], y_pred[mask], **kwargs)


def labeled_accuracy_score(y_true, y_pred, *, sample_weight=None):
    """Accuracy on the rows whose true label is not ``-1``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, with unlabeled rows marked ``-1`` (or ``"-1"``, None, NaN); these
        rows are ignored.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights, restricted to the labeled rows.

    Returns
    -------
    score : float
        Fraction of the labeled rows that are predicted correctly.

    Raises
    ------
    ValueError
        If no row is labeled, or the lengths differ.

    Examples
    --------
    >>> from sklearn_mixedlp.model_selection import labeled_accuracy_score
    >>> labeled_accuracy_score([0, 1, -1, -1], [0, 0, 1, 0])
    0.5
    """
    return float(
        _labeled_score(accuracy_score, y_true, y_pred, sample_weight=sample_weight)
    )


class _LabeledScoreFunc:
    """Picklable wrapper restricting a metric to labeled rows."""

    def __init__(self, score_func):
        self.score_func = score_func
        self.__name__ = "labeled_" + getattr(score_func, "__name__", "score")

    def __call__(self, y_true, y_pred, **kwargs):
        return _labeled_score(self.score_func, y_true, y_pred, **kwargs)


def make_semi_supervised_scorer(
    score_func=accuracy_score, *, greater_is_better=True, **kwargs
):
    """Make a scorer that ignores rows whose true label is ``-1``.

    The returned object is a scikit-learn scorer: ``scorer(estimator, X, y)``
    calls ``estimator.predict(X)`` and returns
    ``score_func(y[y != -1], y_pred[y != -1], **kwargs)`` (negated when
    ``greater_is_better`` is False). Pass it as ``scoring`` to
    :func:`~sklearn.model_selection.cross_val_score`,
    :class:`~sklearn.model_selection.GridSearchCV`, etc.

    Parameters
    ----------
    score_func : callable, default=accuracy_score
        Metric with signature ``score_func(y_true, y_pred, **kwargs)``.
    greater_is_better : bool, default=True
        Whether ``score_func`` is a score (True) or a loss (False), as in
        :func:`sklearn.metrics.make_scorer`.
    **kwargs
        Extra keyword arguments passed to ``score_func``.

    Returns
    -------
    scorer : callable
        Scorer with signature ``scorer(estimator, X, y, sample_weight=None)``.
        It raises ``ValueError`` when ``y`` has no labeled row.

    See Also
    --------
    SemiSupervisedKFold : Splitter that tests on labeled rows only.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.semi_supervised import LabelSpreading
    >>> from sklearn_mixedlp.model_selection import make_semi_supervised_scorer
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1]])
    >>> y = np.array([0, -1, 1, -1])
    >>> model = LabelSpreading(kernel="knn", n_neighbors=2).fit(X, y)
    >>> scorer = make_semi_supervised_scorer()
    >>> scorer(model, X, y)  # the two unlabeled rows are ignored
    1.0
    """
    if not callable(score_func):
        raise TypeError(f"score_func must be callable, got {score_func!r}.")
    return make_scorer(
        _LabeledScoreFunc(score_func), greater_is_better=greater_is_better, **kwargs
    )


def _check_fraction(value, name):
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not 0 < value < 1
    ):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}.")
    return float(value)


def _allocate(n, fractions):
    """Split ``n`` items into ``len(fractions)`` non-empty groups."""
    raw = np.asarray(fractions) * n
    counts = np.floor(raw).astype(int)
    # Largest remainder; ties go to the earlier group.
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    for k in range(len(counts)):
        while counts[k] == 0:
            counts[np.argmax(counts)] -= 1
            counts[k] += 1
    return counts


def class_disjoint_split(
    y, *, train_size=0.4, val_size=0.2, test_size=0.4, random_state=None
):
    """Split rows into class-disjoint train, validation and test sets.

    The retrieval protocol of Zhuang & Moulin (CVPR 2023): the *classes*,
    not the rows, are shuffled and divided into three groups of
    ``train_size`` / ``val_size`` / ``test_size`` of the classes (40 % /
    20 % / 40 % by default); each set holds every row of its classes. Class
    counts are rounded by largest remainder and every group gets at least
    one class.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels. Unlabeled rows (``-1``, ``"-1"``, None, NaN) are
        put in none of the sets.
    train_size, val_size, test_size : float, default=0.4, 0.2, 0.4
        Fractions of the classes in each set; each in (0, 1), summing to 1.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffling of the classes.

    Returns
    -------
    train_idx, val_idx, test_idx : ndarray of int
        Sorted row indices of each set.

    Raises
    ------
    ValueError
        If a size is not in (0, 1), the sizes do not sum to 1, or ``y`` has
        fewer than 3 classes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.model_selection import class_disjoint_split
    >>> y = np.repeat(np.arange(5), 2)
    >>> train, val, test = class_disjoint_split(y, random_state=0)
    >>> len(np.unique(y[train])), len(np.unique(y[val])), len(np.unique(y[test]))
    (2, 1, 2)
    >>> set(y[train]) & set(y[test])
    set()
    """
    sizes = [
        _check_fraction(train_size, "train_size"),
        _check_fraction(val_size, "val_size"),
        _check_fraction(test_size, "test_size"),
    ]
    if not np.isclose(sum(sizes), 1.0, rtol=0, atol=1e-8):
        raise ValueError(
            f"train_size + val_size + test_size must be 1, got "
            f"{train_size} + {val_size} + {test_size} = {sum(sizes)}."
        )
    y = _check_y(y)
    labeled = _labeled_mask(y)
    try:
        classes, y_idx = np.unique(y[labeled], return_inverse=True)
    except TypeError as exc:
        raise ValueError(
            "The classes of y cannot be sorted; do not mix types of labels."
        ) from exc
    n_classes = classes.shape[0]
    if n_classes < 3:
        raise ValueError(
            f"class_disjoint_split needs at least 3 classes (one per set), "
            f"got {n_classes}."
        )
    counts = _allocate(n_classes, sizes)
    perm = check_random_state(random_state).permutation(n_classes)
    group_of_class = np.empty(n_classes, dtype=int)
    group_of_class[perm] = np.repeat(np.arange(3), counts)
    group = np.full(y.shape[0], -1)
    group[labeled] = group_of_class[y_idx.ravel()]
    return tuple(np.flatnonzero(group == k) for k in range(3))
