"""Deep metric learning from mixed-label-propagation pseudolabels.

The loop of SPEC section 7 (Zhuang & Moulin, CVPR 2023, Sec. 3.3)::

    warm-up: n_warmup_epochs on the labeled rows (true labels, weight 1)
    each epoch: embed all rows -> fit the LP estimator on the embeddings
      -> pseudolabels yhat_i and confidences omega_i
      -> one epoch of the confidence-weighted proxy loss (eqs. 26-29)

torch is an optional dependency: it is imported inside the methods, so that
importing this module does not need it.
"""

import io
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils import check_array, check_random_state, column_or_1d
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._label_propagation import HardNegativeLP
from ._utils import unlabeled_mask
from ._utils import entropy_confidence, import_optional

__all__ = ["DeepMetricLearner"]

# Number of rows embedded at once when no gradient is needed.
_INFERENCE_BATCH_SIZE = 1024


def _torch():
    return import_optional("torch", "DeepMetricLearner")


def mlp_head(in_features, embedding_dim, hidden_dim=256):
    """The default network: ``Linear -> ReLU -> Linear``.

    Parameters
    ----------
    in_features : int
        Number of input features.
    embedding_dim : int
        Output (embedding) dimension.
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
        nn.Linear(hidden_dim, embedding_dim),
    )


class DeepMetricLearner(TransformerMixin, BaseEstimator):
    """Semi-supervised deep metric learning with propagated pseudolabels.

    Trains a network ``g_phi`` mapping features to L2-normalised embeddings.
    After ``n_warmup_epochs`` epochs on the labeled rows only, every one of
    ``n_epochs`` epochs (i) embeds all rows, (ii) fits a clone of
    ``estimator`` (label propagation) on the embeddings and ``y``, and
    (iii) trains the network one epoch with the confidence-weighted proxy
    loss (:class:`~sklearn_mixedlp.losses.ProxyLoss`, eqs. 26-29) on the
    pseudolabels. Labeled rows keep their given labels with confidence 1.

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
        A :class:`torch.nn.Module` subclass or a factory. It is called as
        ``module(in_features=n_features, embedding_dim=embedding_dim,
        **module_kwargs)`` and must return an ``nn.Module`` mapping a
        ``(batch, n_features)`` float32 tensor to ``(batch, embedding_dim)``
        (the output is L2-normalised by the learner). None builds
        ``Linear(n_features, hidden_dim) -> ReLU -> Linear(hidden_dim,
        embedding_dim)`` with ``hidden_dim=256`` unless ``module_kwargs``
        gives it.
    module_kwargs : dict, default=None
        Extra keyword arguments of ``module``.
    embedding_dim : int, default=64
        Embedding (and proxy) dimension.
    n_epochs : int, default=20
        Number of pseudolabel epochs.
    n_warmup_epochs : int, default=5
        Number of warm-up epochs on the labeled rows only.
    batch_size : int, default=32
        Training mini-batch size.
    lr : float, default=1e-4
        AdamW learning rate (network and proxies).
    weight_decay : float, default=1e-4
        AdamW weight decay.
    scale : float, default=32.0
        Scale ``eps`` of the proxy loss.
    margin : float, default=0.1
        Margin ``b`` of the proxy loss.
    validation_data : tuple (X_val, y_val), default=None
        Labeled validation rows. When given, Precision@8 of their embeddings
        is computed after every epoch (warm-up included) and the weights of
        the best epoch are restored at the end.
    device : str, default='auto'
        ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'`` or
        ``'cuda:N'``.
    random_state : int, RandomState instance or None, default=None
        Seeds the network and proxy initialisation and the batch shuffling
        (through a private torch generator; torch's global generator is left
        as it was). An int makes CPU fits repeatable.
    verbose : int, default=0
        With ``verbose >= 1`` a progress bar per epoch and a summary line.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (weights of ``best_epoch_``), on ``device_``.
    device_ : str
        The torch device of ``module_`` (``'cpu'`` after unpickling).
    proxies_ : ndarray of shape (n_classes, embedding_dim)
        The L2-normalised class proxies of ``best_epoch_``.
    estimator_ : estimator
        The estimator fitted in the last epoch (on the final embeddings when
        ``n_epochs=0``).
    pseudolabels_ : ndarray of shape (n_samples,)
        Labels (in ``classes_``) given to the training rows by
        ``estimator_``; labeled rows keep their labels.
    confidence_ : ndarray of shape (n_samples,)
        Confidences of ``pseudolabels_`` (1 on labeled rows).
    history_ : list of dict
        One dict per epoch with keys ``epoch`` (0-based over warm-up then
        training epochs), ``phase`` (``'warmup'`` or ``'train'``), ``loss``
        (mean batch loss), ``pseudolabel_agreement`` (accuracy of the
        estimator's ``transduction_`` on the labeled rows; None in warm-up),
        ``valid_precision_at_8`` (None without ``validation_data``) and
        ``time_s``.
    best_epoch_ : int or None
        Index in ``history_`` of the kept weights: the best validation epoch
        with ``validation_data`` (first one on ties), else the last epoch;
        None when no epoch ran.
    classes_ : ndarray of shape (n_classes,)
        Labels of the labeled rows.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.

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
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"]), None],
        "module": [callable, None],
        "module_kwargs": [dict, None],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "n_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "margin": [Interval(Real, None, None, closed="neither")],
        "validation_data": [tuple, None],
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
        embedding_dim=64,
        n_epochs=20,
        n_warmup_epochs=5,
        batch_size=32,
        lr=1e-4,
        weight_decay=1e-4,
        scale=32.0,
        margin=0.1,
        validation_data=None,
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
        self.scale = scale
        self.margin = margin
        self.validation_data = validation_data
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

    # -- fit ------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Train the network on ``X`` with the labels of ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (dense; converted to float32).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows.

        Returns
        -------
        self : DeepMetricLearner
            The fitted learner.
        """
        torch = _torch()
        X, y = validate_data(self, X, y, dtype=np.float32, ensure_min_samples=2)
        labeled = ~unlabeled_mask(y)
        if not labeled.any():
            raise ValueError(
                "y has no labeled sample: every entry is -1 (unlabeled). At "
                "least one labeled sample is needed."
            )
        check_classification_targets(y[labeled])
        self.classes_ = np.unique(y[labeled])
        y_index = np.zeros(y.shape[0], dtype=np.int64)
        y_index[labeled] = np.searchsorted(self.classes_, y[labeled])
        validation = self._check_validation_data()
        self.device_ = self._resolve_device()

        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        fork_devices = (
            [torch.device(self.device_).index or 0] if self.device_ != "cpu" else []
        )
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            self._train(X, y, labeled, y_index, validation, generator)
        return self

    def _train(self, X, y, labeled, y_index, validation, generator):
        torch = _torch()
        from .losses import ProxyLoss

        X_t = torch.tensor(X)  # a copy: read-only inputs are fine
        self.module_ = self._build_module(X_t).to(self.device_)
        criterion = ProxyLoss(
            self.classes_.size, self.embedding_dim, scale=self.scale, margin=self.margin
        ).to(self.device_)
        optimizer = torch.optim.AdamW(
            [*self.module_.parameters(), *criterion.parameters()],
            lr=self.lr,
            weight_decay=self.weight_decay,
        )
        self.history_ = []
        best_score, best_state = -np.inf, None
        self.estimator_ = self.pseudolabels_ = self.confidence_ = None

        n_epochs = self.n_warmup_epochs + self.n_epochs
        for epoch in range(n_epochs):
            start = time.perf_counter()
            if epoch < self.n_warmup_epochs:
                # Warm-up: labeled rows only, true labels, weight 1.
                phase, agreement = "warmup", None
                rows = np.flatnonzero(labeled)
                labels, weights = y_index[rows], np.ones(rows.size)
            else:
                phase = "train"
                rows = np.arange(X.shape[0])
                agreement = self._pseudolabel(X_t, y, labeled, y_index)
                labels, weights = self._pseudo_index, self.confidence_
            loss = self._train_epoch(
                X_t, rows, labels, weights, criterion, optimizer, generator, epoch
            )
            score = None
            if validation is not None:
                score = self._validation_score(*validation)
                if score > best_score:
                    best_score, best_state = score, self._state(criterion)
            self.history_.append(
                {
                    "epoch": epoch,
                    "phase": phase,
                    "loss": loss,
                    "pseudolabel_agreement": agreement,
                    "valid_precision_at_8": score,
                    "time_s": time.perf_counter() - start,
                }
            )
            if self.verbose:
                self._print_summary(self.history_[-1], n_epochs)

        self.best_epoch_ = n_epochs - 1 if n_epochs else None
        if best_state is not None:
            self.best_epoch_ = int(
                np.argmax([h["valid_precision_at_8"] for h in self.history_])
            )
            self.module_.load_state_dict(best_state[0])
            criterion.load_state_dict(best_state[1])
        if self.estimator_ is None:
            self._pseudolabel(X_t, y, labeled, y_index)
        del self._pseudo_index
        with torch.no_grad():
            self.proxies_ = (
                criterion.normalized_proxies().cpu().numpy().astype(np.float32)
            )

    def _build_module(self, X_t):
        """Call the ``module`` factory and check its output shape."""
        torch = _torch()
        kwargs = dict(self.module_kwargs or {})
        factory = mlp_head if self.module is None else self.module
        if isinstance(factory, torch.nn.Module):
            raise TypeError(
                "module must be an nn.Module class or a factory returning a "
                f"module, not a module instance ({type(factory).__name__}); it is "
                "called as module(in_features=..., embedding_dim=..., "
                "**module_kwargs)."
            )
        module = factory(
            in_features=X_t.shape[1], embedding_dim=self.embedding_dim, **kwargs
        )
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"module must return a torch.nn.Module, got {type(module).__name__}."
            )
        probe = X_t[:2]
        module.eval()
        with torch.no_grad():
            out = module(probe)
        expected = (probe.shape[0], self.embedding_dim)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
            raise ValueError(
                "module must map a (batch, n_features) float32 tensor to a "
                f"(batch, embedding_dim) tensor: expected shape {expected} for "
                f"{tuple(probe.shape)} inputs, got {got}."
            )
        return module

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
            loss = criterion(
                self.module_(xb),
                labels[batch].to(self.device_),
                sample_weight=weights[batch].to(self.device_),
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        return float(np.mean(losses)) if losses else float("nan")

    def _embed(self, X_t):
        """L2-normalised embeddings of ``X_t`` (eval mode, no gradient)."""
        torch = _torch()
        self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, X_t.shape[0], _INFERENCE_BATCH_SIZE):
                xb = X_t[start : start + _INFERENCE_BATCH_SIZE].to(self.device_)
                z = torch.nn.functional.normalize(self.module_(xb).float(), dim=1)
                out.append(z.cpu())
        if not out:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
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
        X_val = check_array(
            X_val, dtype=np.float32, ensure_min_samples=2, input_name="X_val"
        )
        if X_val.shape[1] != self.n_features_in_:
            raise ValueError(
                f"validation_data has {X_val.shape[1]} features, but X has "
                f"{self.n_features_in_}."
            )
        y_val = column_or_1d(y_val, warn=True)
        if y_val.shape[0] != X_val.shape[0]:
            raise ValueError(
                f"validation_data has {X_val.shape[0]} rows in X_val but "
                f"{y_val.shape[0]} labels in y_val."
            )
        if unlabeled_mask(y_val).any():
            raise ValueError("validation_data must hold labeled rows only (no -1).")
        return _torch().tensor(X_val), y_val

    def _validation_score(self, X_val_t, y_val):
        from .metrics import precision_at_k

        k = min(8, X_val_t.shape[0] - 1)
        return float(precision_at_k(self._embed(X_val_t), y_val, k=k))

    def _resolve_device(self):
        from ._solvers import resolve_solver

        return resolve_solver("torch", self.device)[1]

    def _print_summary(self, record, n_epochs):
        parts = [
            f"[DeepMetricLearner] epoch {record['epoch'] + 1}/{n_epochs}",
            f"({record['phase']})",
            f"loss {record['loss']:.4f}",
        ]
        if record["pseudolabel_agreement"] is not None:
            parts.append(f"agreement {record['pseudolabel_agreement']:.3f}")
        if record["valid_precision_at_8"] is not None:
            parts.append(f"valid P@8 {record['valid_precision_at_8']:.4f}")
        parts.append(f"{record['time_s']:.2f}s")
        print(" ".join(parts))

    # -- transform --------------------------------------------------------
    def transform(self, X):
        """Embed ``X`` with the trained network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to embed.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim), float32
            L2-normalised embeddings.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
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
