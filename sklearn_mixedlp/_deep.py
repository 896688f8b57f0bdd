"""Deep metric learning from mixed-label-propagation pseudolabels.

The loop of Zhuang & Moulin (CVPR 2023, Sec. 3.3)::

    initial state: the untrained network (a candidate of the selection)
    warm-up (optional, none by default): n_warmup_epochs on the labeled
      rows (true labels, weight 1)
    each epoch: embed all rows -> fit the LP estimator on the embeddings
      -> pseudolabels yhat_i and confidences omega_i
      -> one epoch of the confidence-weighted proxy loss (eqs. 26-29)
    keep: the untrained state, or the best epoch whose gain over it on
      held-out classes is beyond noise

torch is an optional dependency: it is imported inside the methods, so that
importing this module does not need it.
"""

import inspect
import io
import math
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils import check_array, check_random_state, column_or_1d
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._label_propagation import HardNegativeLP
from ._utils import unlabeled_mask
from ._utils import entropy_confidence, import_optional

__all__ = ["DeepMetricLearner"]

# Number of rows embedded at once when no gradient is needed.
_INFERENCE_BATCH_SIZE = 1024
# A trained epoch replaces the untrained state only when the lower end of
# the one-sided interval of its paired gain is above zero, at a family-wise
# level of 97.5 % over all the epochs compared (Bonferroni, Student t).
_SELECTION_ALPHA = 0.025


def _gain_lower_bound(diff, n_comparisons):
    """Mean of ``diff`` and the lower end of its one-sided interval."""
    from scipy.stats import t

    gain = float(diff.mean())
    if diff.size < 2:
        return gain, -math.inf
    se = float(diff.std(ddof=1)) / math.sqrt(diff.size)
    quantile = float(t.ppf(1 - _SELECTION_ALPHA / max(n_comparisons, 1), diff.size - 1))
    return gain, gain - quantile * se


def _torch():
    return import_optional("torch", "DeepMetricLearner")


def mlp_head(in_features, embedding_dim=None, hidden_dim=256):
    """A randomly initialised ``Linear -> ReLU -> Linear`` network.

    Not the default (see :class:`~sklearn_mixedlp.nets.ProjectionHead`):
    its untrained embedding mixes the input features at random, which loses
    retrieval accuracy before any training. Kept for comparison.

    Parameters
    ----------
    in_features : int
        Number of input features.
    embedding_dim : int or None, default=None
        Output (embedding) dimension; None means 64.
    hidden_dim : int, default=256
        Width of the hidden layer.

    Returns
    -------
    module : torch.nn.Sequential
    """
    nn = _torch().nn
    return nn.Sequential(
        nn.Linear(in_features, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, 64 if embedding_dim is None else embedding_dim),
    )


def _per_query_scores(Z, y, queries, metric, k=8):
    """Retrieval score of every query row of unit-norm embeddings ``Z``.

    Each query ``Z[q]`` ranks all other rows of ``Z`` by cosine similarity
    (itself excluded by index). ``metric='precision'``: the fraction of its
    ``k`` nearest rows with its label; ``'map_at_r'``: average precision at
    ``R`` = the number of other rows of its class (Musgrave et al., 2020).
    """
    n = Z.shape[0]
    _, y = np.unique(y, return_inverse=True)
    counts = np.bincount(y)
    out = np.empty(queries.size)
    depth = min(k, n - 1) if metric == "precision" else int(counts[y[queries]].max() - 1)
    depth = max(depth, 1)
    for start in range(0, queries.size, _INFERENCE_BATCH_SIZE):
        block = queries[start : start + _INFERENCE_BATCH_SIZE]
        sim = Z[block] @ Z.T
        sim[np.arange(block.size), block] = -np.inf
        top = np.argpartition(-sim, depth - 1, axis=1)[:, :depth]
        order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        rel = y[top] == y[block][:, None]
        if metric == "precision":
            out[start : start + block.size] = rel.mean(axis=1)
        else:
            R = counts[y[block]] - 1
            rel &= np.arange(depth) < R[:, None]
            precision = np.cumsum(rel, axis=1) / np.arange(1, depth + 1)
            out[start : start + block.size] = (
                np.where(rel, precision, 0.0).sum(axis=1) / R
            )
    return out


def _accepts(factory, name):
    """Whether ``factory`` can be called with the keyword ``name``."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


class DeepMetricLearner(TransformerMixin, BaseEstimator):
    """Semi-supervised deep metric learning with propagated pseudolabels.

    Trains a network ``g_phi`` mapping features (or images) to
    L2-normalised embeddings. After ``n_warmup_epochs`` epochs on the
    labeled rows only (none by default), every one of ``n_epochs`` epochs (i) embeds all rows,
    (ii) fits a clone of ``estimator`` (label propagation) on the embeddings
    and ``y``, and (iii) trains the network one epoch with the
    confidence-weighted proxy loss
    (:class:`~sklearn_mixedlp.losses.ProxyLoss`, eqs. 26-29) on the
    pseudolabels. Labeled rows keep their given labels with confidence 1.

    **Never worse than the input by default.** The default network
    (:class:`~sklearn_mixedlp.nets.ProjectionHead`) starts as the input's
    geometry: its untrained embedding has exactly the cosine neighbours of
    ``X``. The untrained state is a candidate of the epoch selection, and a
    trained epoch replaces it only when its gain on classes the training
    never saw is beyond noise: a paired comparison, query by query, whose
    one-sided lower bound (Student t, family-wise 97.5 % over the epochs,
    Bonferroni) must be above zero. The classes are those
    of ``validation_data`` when given (score: Precision@8, as in the paper),
    otherwise a class-disjoint hold-out of ``validation_fraction`` of the
    labeled classes (score: MAP@R of their labeled rows among all labeled
    rows). Training on the training classes alone would keep reshaping the
    space towards them, at the expense of unseen classes.

    Requires the optional dependency ``torch``.

    Parameters
    ----------
    estimator : estimator, default=None
        Transductive estimator fitted on the embeddings each epoch; it must
        accept ``fit(X, y)`` with ``-1`` for unlabeled rows and expose
        ``transduction_`` and ``confidence_`` (or ``label_distributions_``,
        whose entropy confidence is then used; else confidence 1). Cloned
        each epoch. None means ``HardNegativeLP()``.
    module : callable, default=None
        A :class:`torch.nn.Module` subclass or a factory returning a module
        that maps a float32 batch of rows, ``(batch, *input_shape)``, to a
        2-D ``(batch, embedding_dim)`` tensor (the learner L2-normalises
        it). It is called with ``in_features`` (values per row),
        ``embedding_dim`` and ``**module_kwargs``, and also with
        ``input_shape`` (the shape of one row, e.g. ``(3, 32, 32)``) and
        ``X`` (the training rows, a CPU float32 tensor, to initialise from
        data) when its signature accepts them. A pretrained network is
        passed as a factory that loads its weights, e.g.
        :func:`sklearn_mixedlp.nets.efficientnet_lite0`; the factory must
        return it on the CPU or on ``device``. None builds a
        :class:`~sklearn_mixedlp.nets.ProjectionHead` (``module_kwargs``
        may give its ``hidden_dim``).
    module_kwargs : dict, default=None
        Extra keyword arguments of ``module``.
    embedding_dim : int or None, default=None
        Embedding (and proxy) dimension. None keeps the module's natural
        output: the input dimension for the default head (so that no
        information is thrown away and the untrained state is the input
        geometry), the pooled feature dimension for a backbone.
    n_epochs : int, default=20
        Number of pseudolabel epochs.
    n_warmup_epochs : int, default=0
        Number of warm-up epochs on the labeled rows only, before the
        pseudolabel epochs. None by default: the first pseudolabels come
        from the untrained embeddings, which need no warm-up, and with a
        few labels per class a warm-up epoch is a few steps on a few rows
        that fit the network to them. Fine-tuning a pretrained
        EfficientNet-Lite0 on Fashion-MNIST and digits images, five
        warm-up epochs cost 3 to 8 points of Recall@1 on unseen classes
        before the pseudolabel epochs started; on feature vectors they
        made no difference.
    batch_size : int, default=32
        Training mini-batch size.
    lr : float or None, default=None
        AdamW learning rate (network and proxies). None means 1e-3 for the
        default head and 1e-4 (the paper's) for a ``module`` of yours, e.g. a
        pretrained backbone. Adam moves every weight by about ``lr`` per
        step, so what matters is ``lr`` relative to the size of the
        weights: the head starts at the identity (weights of order 1), a
        pretrained convolutional network has weights of order 0.01-0.1,
        and the two values give both a relative step of about 1e-3.
    weight_decay : float, default=1e-4
        AdamW weight decay.
    proxy_lr : float or None, default=None
        Learning rate of the class proxies; None means ``lr``.
    proxy_init : {'random', 'class_means'}, default='random'
        Start of the proxies: random directions, or the normalised mean
        untrained embedding of each class's labeled rows.
    distillation : float, default=0.0
        Weight of a term that keeps the cosine similarities within each
        mini-batch close to those of the untrained embeddings,
        ``distillation / C * sum_i mean_j (z_i . z_j - z0_i . z0_j)^2``
        (``C`` classes, ``z0`` the untrained embeddings), added to the
        proxy loss; 0 turns it off.
    scale : float, default=32.0
        Scale ``eps`` of the proxy loss.
    margin : float, default=0.1
        Margin ``b`` of the proxy loss.
    validation_data : tuple (X_val, y_val), default=None
        Labeled rows of validation classes. When given, Precision@8 of
        their embeddings is computed before training and after every epoch
        and selects the epoch kept (see above).
    validation_fraction : float, default=0.2
        Without ``validation_data``: the fraction of the labeled classes
        (at least one) whose labeled rows are held out of training to
        select the epoch, stratified by class (every row of a held-out
        class is held out, none of the others). At least two classes are
        always trained on; with fewer than three labeled classes, or with
        ``validation_fraction=0``, nothing is held out and the last epoch
        is kept.
    augment : callable, default=None
        Applied to every training mini-batch (a tensor on ``device_``) before
        the network, e.g. random flips and crops of images; never at
        embedding time. Draws from torch's global generator, which the
        learner seeds from ``random_state``.
    device : str, default='auto'
        ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'`` or
        ``'cuda:N'``.
    random_state : int, RandomState instance or None, default=None
        Seeds the network and proxy initialisation, the hold-out classes
        and the batch shuffling (through a private torch generator; torch's
        global generator is left as it was). An int makes CPU fits
        repeatable.
    verbose : int, default=0
        With ``verbose >= 1`` a progress bar per epoch and a summary line.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (weights of ``best_epoch_``), on ``device_``.
    device_ : str
        The torch device of ``module_`` (``'cpu'`` after unpickling).
    embedding_dim_ : int
        Dimension of the embeddings.
    input_shape_ : tuple of int
        Shape of one input row (``(n_features,)`` or ``(C, H, W)``).
    proxies_ : ndarray of shape (n_classes, n_dims)
        The L2-normalised class proxies of ``best_epoch_`` (``n_dims`` is
        ``embedding_dim_``).
    estimator_ : estimator
        The estimator fitted on the kept embeddings of all training rows.
    pseudolabels_ : ndarray of shape (n_samples,)
        Labels (in ``classes_``) that ``estimator_`` gives the training
        rows; labeled rows keep their labels.
    confidence_ : ndarray of shape (n_samples,)
        Confidences of ``pseudolabels_`` (1 on labeled rows).
    holdout_classes_ : ndarray
        The labeled classes held out for the selection (empty when
        ``validation_data`` is given or nothing is held out).
    history_ : list of dict
        One dict per state: the untrained network first (``phase``
        ``'initial'``), then one per epoch. Keys: ``epoch`` (index in
        ``history_``), ``phase`` (``'initial'``, ``'warmup'`` or
        ``'train'``), ``loss`` (mean batch loss; None for the initial
        state), ``pseudolabel_agreement`` (accuracy of the estimator's
        ``transduction_`` on the labeled rows; None outside training
        epochs), ``valid_score`` (mean selection score, None without
        selection), ``valid_gain`` and ``valid_gain_lower`` (paired gain
        over the initial state and its family-wise one-sided lower bound) and
        ``time_s``.
    best_epoch_ : int
        Index in ``history_`` of the kept weights (0: the untrained state).
    best_epoch_reason_ : str
        Why ``best_epoch_`` was kept.
    validation_metric_ : str or None
        ``'precision_at_8'`` (validation_data), ``'holdout_map_at_r'``
        (held-out classes) or None (no selection).
    classes_ : ndarray of shape (n_classes,)
        Labels of the labeled rows.
    n_features_in_ : int
        ``X.shape[1]`` in :meth:`fit` (features, or image channels).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_mixedlp import HardNegativeLP
    >>> from sklearn_mixedlp import DeepMetricLearner
    >>> X, y = load_digits(return_X_y=True)
    >>> X, y = X[:300] / 16, y[:300].copy()
    >>> y[50:] = -1
    >>> dml = DeepMetricLearner(HardNegativeLP(n_neighbors=10), n_epochs=1,
    ...                         n_warmup_epochs=1, device="cpu", random_state=0)
    >>> dml.fit_transform(X, y).shape
    (300, 64)
    >>> dml.history_[dml.best_epoch_]["phase"], dml.validation_metric_
    ('initial', 'holdout_map_at_r')
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"]), None],
        "module": [callable, None],
        "module_kwargs": [dict, None],
        "embedding_dim": [Interval(Integral, 1, None, closed="left"), None],
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "n_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "proxy_lr": [Interval(Real, 0, None, closed="neither"), None],
        "proxy_init": [StrOptions({"class_means", "random"})],
        "distillation": [Interval(Real, 0, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "margin": [Interval(Real, None, None, closed="neither")],
        "validation_data": [tuple, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "augment": [callable, None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        module=None,
        module_kwargs=None,
        embedding_dim=None,
        n_epochs=20,
        n_warmup_epochs=0,
        batch_size=32,
        lr=None,
        weight_decay=1e-4,
        proxy_lr=None,
        proxy_init="random",
        distillation=0.0,
        scale=32.0,
        margin=0.1,
        validation_data=None,
        validation_fraction=0.2,
        augment=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.module = module
        self.module_kwargs = module_kwargs
        self.embedding_dim = embedding_dim
        self.n_epochs = n_epochs
        self.n_warmup_epochs = n_warmup_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.proxy_lr = proxy_lr
        self.proxy_init = proxy_init
        self.distillation = distillation
        self.scale = scale
        self.margin = margin
        self.validation_data = validation_data
        self.validation_fraction = validation_fraction
        self.augment = augment
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # -- input ------------------------------------------------------------
    def _check_rows(self, X, name="X", reset=True, fit=False, y=None):
        """Validate features ``(n, d)`` or images ``(n, C, H, W)``."""
        X_arr = X
        if not hasattr(X, "ndim"):
            X_arr = np.asarray(X, dtype=object) if X is not None else X
        ndim = getattr(X_arr, "ndim", 2)
        if ndim == 3 or ndim > 4:
            hint = (
                " For grey images of shape (n, H, W), pass X[:, None] (one "
                "channel)." if ndim == 3 else ""
            )
            raise ValueError(
                f"{name} must be a 2-D array of features (n_samples, n_features) "
                f"or a 4-D array of images (n_samples, channels, height, width); "
                f"got an array of shape {getattr(X_arr, 'shape', None)}.{hint}"
            )
        kwargs = dict(dtype=np.float32, allow_nd=ndim == 4)
        if fit:
            return validate_data(self, X, y, ensure_min_samples=2, **kwargs)
        if name == "X":
            X = validate_data(self, X, reset=reset, **kwargs)
        else:
            X = check_array(X, ensure_min_samples=2, input_name=name, **kwargs)
        if not reset and tuple(X.shape[1:]) != self.input_shape_:
            if X.ndim == 2 and len(self.input_shape_) == 1:
                raise ValueError(
                    f"{name} has {X.shape[1]} features, but the learner was "
                    f"fitted on {self.input_shape_[0]} features."
                )
            raise ValueError(
                f"{name} has rows of shape {tuple(X.shape[1:])}, but the learner "
                f"was fitted on rows of shape {self.input_shape_}."
            )
        return X

    # -- fit ------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Train the network on ``X`` with the labels of ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, channels, height, width)
            Training features, or images (dense; converted to float32).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows.

        Returns
        -------
        self : DeepMetricLearner
            The fitted learner.
        """
        torch = _torch()
        X, y = self._check_rows(X, fit=True, y=y)
        self.input_shape_ = tuple(X.shape[1:])
        labeled = ~unlabeled_mask(y)
        if not labeled.any():
            raise ValueError(
                "y has no labeled sample: every entry is -1 (unlabeled). At "
                "least one labeled sample is needed."
            )
        check_classification_targets(y[labeled])
        self.classes_ = np.unique(y[labeled])
        y_index = np.full(y.shape[0], -1, dtype=np.int64)
        y_index[labeled] = np.searchsorted(self.classes_, y[labeled])
        validation = self._check_validation_data()
        self.device_ = self._resolve_device()

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        holdout = (
            self._holdout_classes(y_index, rng)
            if validation is None
            else np.zeros(0, dtype=np.int64)
        )
        self.holdout_classes_ = self.classes_[holdout]
        fork_devices = (
            [torch.device(self.device_).index or 0] if self.device_ != "cpu" else []
        )
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            self._train(X, y, y_index, validation, holdout, generator)
        return self

    def _holdout_classes(self, y_index, rng):
        """Indices of the labeled classes held out for the epoch selection."""
        n_classes = self.classes_.size
        if self.validation_fraction == 0 or n_classes < 3:
            return np.zeros(0, dtype=np.int64)
        n_hold = min(
            max(1, int(round(self.validation_fraction * n_classes))), n_classes - 2
        )
        counts = np.bincount(y_index[y_index >= 0], minlength=n_classes)
        # A held-out class needs two labeled rows to be retrieved.
        eligible = np.flatnonzero(counts >= 2)
        if eligible.size < 1:
            return np.zeros(0, dtype=np.int64)
        return np.sort(rng.permutation(eligible)[: min(n_hold, eligible.size)])

    def _train(self, X, y, y_index, validation, holdout, generator):
        torch = _torch()
        from .losses import ProxyLoss

        X_t = torch.tensor(X)  # a copy: read-only inputs are fine
        labeled = y_index >= 0
        # Rows the network and the estimator are trained on: all but the
        # labeled rows of the held-out classes.
        held = labeled & np.isin(y_index, holdout)
        pool = np.flatnonzero(~held)
        X_pool, y_pool = X_t[pool], y[pool]
        y_index_pool, labeled_pool = y_index[pool], labeled[pool]

        self.module_ = self._build_module(X_pool)
        criterion = ProxyLoss(
            self.classes_.size, self.embedding_dim_, scale=self.scale, margin=self.margin
        ).to(self.device_)
        # The untrained embeddings of the training rows: the anchor of the
        # distillation term and the start of the class-mean proxies.
        initial = None
        if self.distillation > 0 or self.proxy_init == "class_means":
            initial = torch.as_tensor(self._embed(X_pool))
        if self.proxy_init == "class_means":
            self._class_mean_proxies(criterion, initial, y_index_pool, labeled_pool)
        self._initial = initial if self.distillation > 0 else None
        lr = self.lr
        if lr is None:
            lr = 1e-3 if self.module is None else 1e-4
        optimizer = torch.optim.AdamW(
            [
                {"params": list(self.module_.parameters())},
                {
                    "params": list(criterion.parameters()),
                    "lr": lr if self.proxy_lr is None else self.proxy_lr,
                },
            ],
            lr=lr,
            weight_decay=self.weight_decay,
        )
        selector = self._selector(X_t, y_index, validation, held)
        self.history_ = []
        self.estimator_ = self.pseudolabels_ = self.confidence_ = None
        best = {"epoch": 0, "gain": 0.0, "state": self._state(criterion)}

        n_epochs = self.n_warmup_epochs + self.n_epochs
        reference = None
        for epoch in range(n_epochs + 1):
            start = time.perf_counter()
            loss = agreement = None
            if epoch == 0:
                phase = "initial"
            elif epoch <= self.n_warmup_epochs:
                # Warm-up: labeled rows only, true labels, weight 1.
                phase = "warmup"
                rows = np.flatnonzero(labeled_pool)
                labels, weights = y_index_pool[rows], np.ones(rows.size)
            else:
                phase = "train"
                rows = np.arange(pool.size)
                agreement = self._pseudolabel(X_pool, y_pool, labeled_pool, y_index_pool)
                labels, weights = self._pseudo_index, self.confidence_
            if epoch > 0:
                loss = self._train_epoch(
                    X_pool, rows, labels, weights, criterion, optimizer, generator,
                    epoch,
                )
            record = {
                "epoch": epoch,
                "phase": phase,
                "loss": loss,
                "pseudolabel_agreement": agreement,
                "valid_score": None,
                "valid_gain": None,
                "valid_gain_lower": None,
            }
            if selector is not None:
                scores = selector()
                if reference is None:
                    reference = scores
                gain, lower = _gain_lower_bound(scores - reference, n_epochs)
                if epoch == 0:
                    lower = 0.0
                record.update(
                    valid_score=float(scores.mean()), valid_gain=gain,
                    valid_gain_lower=lower,
                )
                if epoch > 0 and lower > 0 and gain > best["gain"]:
                    best = {"epoch": epoch, "gain": gain, "state": self._state(criterion)}
            record["time_s"] = time.perf_counter() - start
            self.history_.append(record)
            if self.verbose:
                self._print_summary(record, n_epochs)

        self._initial = None
        self._select(best, selector, n_epochs, criterion)
        # The estimator on the kept embeddings, all rows and labels.
        self._pseudolabel(X_t, y, labeled, y_index)
        del self._pseudo_index
        with torch.no_grad():
            self.proxies_ = (
                criterion.normalized_proxies().cpu().numpy().astype(np.float32)
            )

    def _class_mean_proxies(self, criterion, Z, y_index, labeled):
        """Start each proxy at the normalised mean untrained embedding of
        its labeled rows (classes without labeled rows keep theirs)."""
        torch = _torch()
        rows = np.flatnonzero(labeled)
        if rows.size == 0:
            return
        index = torch.as_tensor(y_index[rows])
        sums = torch.zeros(self.classes_.size, Z.shape[1], dtype=torch.float64)
        sums.index_add_(0, index, Z[rows].to(torch.float64))
        norms = torch.linalg.vector_norm(sums, dim=1)
        present = norms > 0
        with torch.no_grad():
            proxies = criterion.proxies
            means = (sums[present] / norms[present, None]).to(proxies.dtype)
            proxies[present.to(proxies.device)] = means.to(proxies.device)

    def _select(self, best, selector, n_epochs, criterion):
        """Restore the kept weights; set best_epoch_ and its reason."""
        if selector is None:
            self.best_epoch_ = n_epochs
            self.validation_metric_ = None
            self.best_epoch_reason_ = (
                "no selection: the last epoch (no validation_data, and no "
                "class could be held out: validation_fraction=0 or fewer "
                "than 3 labeled classes)"
            )
            return
        where = (
            "the validation classes (Precision@8)"
            if self.validation_metric_ == "precision_at_8"
            else f"{self.holdout_classes_.size} held-out labeled class(es) (MAP@R)"
        )
        self.best_epoch_ = best["epoch"]
        self.module_.load_state_dict(best["state"][0])
        criterion.load_state_dict(best["state"][1])
        if best["epoch"] == 0:
            self.best_epoch_reason_ = (
                f"the untrained network: no epoch improved on {where} beyond "
                "noise (paired one-sided lower bound of the gain > 0, family-wise "
                "97.5% over the epochs)"
            )
        else:
            record = self.history_[best["epoch"]]
            self.best_epoch_reason_ = (
                f"the largest gain over the untrained network on {where} among "
                f"the epochs whose gain is beyond noise: "
                f"{record['valid_gain']:+.4f} (lower bound "
                f"{record['valid_gain_lower']:+.4f})"
            )

    def _selector(self, X_t, y_index, validation, held):
        """A callable returning per-query scores of the current network."""
        if validation is not None:
            X_val_t, y_val = validation
            self.validation_metric_ = "precision_at_8"
            queries = np.arange(X_val_t.shape[0])
            return lambda: _per_query_scores(
                self._embed(X_val_t), y_val, queries, "precision", k=8
            )
        if not held.any():
            return None
        self.validation_metric_ = "holdout_map_at_r"
        rows = np.flatnonzero(y_index >= 0)
        X_lab, y_lab = X_t[rows], y_index[rows]
        queries = np.flatnonzero(held[rows])
        return lambda: _per_query_scores(self._embed(X_lab), y_lab, queries, "map_at_r")

    def _build_module(self, X_t):
        """Call the ``module`` factory and check what it returns."""
        torch = _torch()
        kwargs = dict(self.module_kwargs or {})
        if self.module is None:
            from .nets import ProjectionHead

            factory = ProjectionHead
        else:
            factory = self.module
        if isinstance(factory, torch.nn.Module):
            raise TypeError(
                "module must be an nn.Module class or a factory returning a "
                f"module, not a module instance ({type(factory).__name__}); it is "
                "called as module(in_features=..., embedding_dim=..., "
                "**module_kwargs). Wrap a pretrained network in a function that "
                "loads it."
            )
        in_features = int(np.prod(self.input_shape_))
        for name, value in (("input_shape", self.input_shape_), ("X", X_t)):
            if name not in kwargs and _accepts(factory, name):
                kwargs[name] = value
        module = factory(
            in_features=in_features, embedding_dim=self.embedding_dim, **kwargs
        )
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"module must return a torch.nn.Module, got {type(module).__name__}."
            )
        self._check_module_device(torch, module)
        module = module.to(self.device_)
        probe = X_t[:2].to(self.device_)
        module.eval()
        with torch.no_grad():
            out = module(probe)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
            raise ValueError(
                "module must map a batch of rows to a 2-D (batch, embedding_dim) "
                f"tensor; for {tuple(probe.shape)} inputs it returned {got}. Add a "
                "pooling and flatten step (e.g. x.mean(dim=(2, 3)) after a "
                "convolutional trunk)."
            )
        if self.embedding_dim is not None and out.shape != (
            probe.shape[0],
            self.embedding_dim,
        ):
            raise ValueError(
                "module must map a batch of rows to a (batch, embedding_dim) "
                f"tensor: expected shape {(probe.shape[0], self.embedding_dim)} "
                f"for {tuple(probe.shape)} inputs, got {tuple(out.shape)}."
            )
        self.embedding_dim_ = int(out.shape[1])
        return module

    def _check_module_device(self, torch, module):
        """A factory must return its module on the CPU or on ``device_``."""
        target = torch.device(self.device_)
        for tensor in [*module.parameters(), *module.buffers()]:
            dev = tensor.device
            if dev.type == "cpu" or (
                dev.type == target.type and (dev.index or 0) == (target.index or 0)
            ):
                continue
            raise ValueError(
                f"module returned a network with tensors on {dev}, but the "
                f"learner runs on {self.device_!r} (device={self.device!r}). Return "
                "it on the CPU (the learner moves it to its device) or set "
                f"device='{dev}'."
                + (
                    " A network on the 'meta' device has no weights: load them "
                    "first." if dev.type == "meta" else ""
                )
            )

    def _pseudolabel(self, X_t, y, labeled, y_index):
        """Fit a clone of the estimator on the current embeddings.

        Sets ``estimator_``, ``pseudolabels_``, ``confidence_`` and the class
        indices used by the loss; returns the agreement of the estimator's
        ``transduction_`` with the labeled rows.
        """
        base = HardNegativeLP() if self.estimator is None else self.estimator
        estimator = clone(base).fit(self._embed(X_t), y)
        transduction = np.asarray(estimator.transduction_)
        index = np.searchsorted(self.classes_, transduction)
        index = np.clip(index, 0, self.classes_.size - 1)
        unknown = self.classes_[index] != transduction
        if unknown.any():
            raise ValueError(
                f"The estimator predicted labels {np.unique(transduction[unknown])} "
                f"that are not among the labeled classes {self.classes_}."
            )
        if hasattr(estimator, "confidence_"):
            confidence = np.asarray(estimator.confidence_, dtype=np.float64)
        elif hasattr(estimator, "label_distributions_"):
            confidence = entropy_confidence(estimator.label_distributions_)
        else:
            confidence = np.ones(transduction.shape[0])
        agreement = float(np.mean(index[labeled] == y_index[labeled]))
        index[labeled] = y_index[labeled]  # labeled rows keep their labels
        confidence = confidence.copy()
        confidence[labeled] = 1.0
        self.estimator_ = estimator
        self._pseudo_index = index
        self.pseudolabels_ = self.classes_[index]
        self.confidence_ = confidence
        return agreement

    def _train_epoch(
        self, X_t, rows, labels, weights, criterion, optimizer, gen, epoch
    ):
        """One pass over ``rows`` in shuffled mini-batches; mean batch loss."""
        torch = _torch()
        labels = torch.as_tensor(labels, dtype=torch.long)
        weights = torch.as_tensor(np.asarray(weights), dtype=torch.float32)
        order = torch.randperm(rows.size, generator=gen).numpy()
        batches = [
            order[i : i + self.batch_size] for i in range(0, rows.size, self.batch_size)
        ]
        progress = None
        if self.verbose >= 1:
            tqdm = import_optional("tqdm", "DeepMetricLearner(verbose>=1)").tqdm
            progress = tqdm(total=len(batches), desc=f"epoch {epoch}", leave=False)
        self.module_.train()
        criterion.train()
        losses = []
        for batch in batches:
            xb = X_t[rows[batch]].to(self.device_)
            if self.augment is not None:
                xb = self.augment(xb)
            z = self.module_(xb).float()
            loss = criterion(
                z,
                labels[batch].to(self.device_),
                sample_weight=weights[batch].to(self.device_),
            )
            if self._initial is not None and len(batch) > 1:
                loss = loss + self._distillation_loss(z, rows[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        return float(np.mean(losses)) if losses else float("nan")

    def _distillation_loss(self, z, rows):
        """``distillation / C * sum_i mean_j (z_i . z_j - z0_i . z0_j)^2``
        over the batch: how far the cosine similarities of the batch have
        moved from those of the untrained embeddings ``z0``, weighted per
        row like one row's proxy loss."""
        from .losses import _normalize_rows

        z = _normalize_rows(z)
        z0 = self._initial[rows].to(z.device)
        gap = z @ z.T - z0 @ z0.T
        return self.distillation * gap.pow(2).mean(dim=1).sum() / self.classes_.size

    def _embed(self, X_t):
        """L2-normalised embeddings of ``X_t`` (eval mode, no gradient)."""
        torch = _torch()
        from .losses import _normalize_rows

        self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, X_t.shape[0], _INFERENCE_BATCH_SIZE):
                xb = X_t[start : start + _INFERENCE_BATCH_SIZE].to(self.device_)
                out.append(_normalize_rows(self.module_(xb).float()).cpu())
        if not out:
            return np.zeros((0, self.embedding_dim_), dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32, copy=False)

    def _state(self, criterion):
        def copy(module):
            return {k: v.detach().clone() for k, v in module.state_dict().items()}

        return copy(self.module_), copy(criterion)

    # -- validation -------------------------------------------------------
    def _check_validation_data(self):
        if self.validation_data is None:
            return None
        if len(self.validation_data) != 2:
            raise ValueError(
                "validation_data must be a tuple (X_val, y_val), got a tuple of "
                f"length {len(self.validation_data)}."
            )
        X_val, y_val = self.validation_data
        X_val = self._check_rows(X_val, name="X_val", reset=False)
        y_val = column_or_1d(y_val, warn=True)
        if y_val.shape[0] != X_val.shape[0]:
            raise ValueError(
                f"validation_data has {X_val.shape[0]} rows in X_val but "
                f"{y_val.shape[0]} labels in y_val."
            )
        if unlabeled_mask(y_val).any():
            raise ValueError("validation_data must hold labeled rows only (no -1).")
        return _torch().tensor(X_val), y_val

    def _resolve_device(self):
        from ._solvers import resolve_solver

        return resolve_solver("torch", self.device)[1]

    def _print_summary(self, record, n_epochs):
        parts = [
            f"[DeepMetricLearner] epoch {record['epoch']}/{n_epochs}",
            f"({record['phase']})",
        ]
        if record["loss"] is not None:
            parts.append(f"loss {record['loss']:.4f}")
        if record["pseudolabel_agreement"] is not None:
            parts.append(f"agreement {record['pseudolabel_agreement']:.3f}")
        if record["valid_score"] is not None:
            parts.append(
                f"valid {record['valid_score']:.4f} (gain {record['valid_gain']:+.4f}, "
                f"lower {record['valid_gain_lower']:+.4f})"
            )
        parts.append(f"{record['time_s']:.2f}s")
        print(" ".join(parts))

    # -- transform --------------------------------------------------------
    def transform(self, X):
        """Embed ``X`` with the trained network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, channels, height, width)
            Rows to embed, of the shape seen in :meth:`fit`.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_dims), float32
            L2-normalised embeddings (``n_dims`` is ``embedding_dim_``).
        """
        check_is_fitted(self)
        X = self._check_rows(X, reset=False)
        return self._embed(_torch().tensor(X))

    # -- pickling -----------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        if "module_" in state:
            # Round trip through torch's serialiser with map_location='cpu':
            # the pickle then holds CPU tensors only, and loads anywhere.
            torch = _torch()
            buffer = io.BytesIO()
            torch.save(state["module_"], buffer)
            buffer.seek(0)
            state["module_"] = torch.load(
                buffer, map_location="cpu", weights_only=False
            )
            state["device_"] = "cpu"
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
