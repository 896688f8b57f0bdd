"""Tests for sklearn_mixedlp.losses.ProxyLoss."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn_mixedlp.losses import ProxyLoss


def _reference_loss(embeddings, labels, proxies, weights, scale, margin):
    """Eqs. 26-29 evaluated with explicit python loops in float64."""
    Z = np.asarray(embeddings, dtype=np.float64)
    P = np.asarray(proxies, dtype=np.float64)
    n_classes = P.shape[0]
    total = 0.0
    for i in range(Z.shape[0]):
        z = Z[i] / math.sqrt(sum(v * v for v in Z[i]))
        cos = []
        for c in range(n_classes):
            p = P[c] / math.sqrt(sum(v * v for v in P[c]))
            cos.append(sum(a * b for a, b in zip(z, p)))
        y = int(labels[i])
        l_plus = math.log1p(math.exp(-scale * (cos[y] - margin)))
        l_minus = 0.0
        for c in range(n_classes):
            if c != y:
                l_minus += math.log1p(math.exp(scale * (cos[c] + margin)))
        total += float(weights[i]) * (l_plus + l_minus)
    return total / n_classes


def _random_batch(seed, n_samples=13, n_classes=5, dim=7):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, dim)) * rng.uniform(0.1, 10, size=(n_samples, 1))
    y = rng.randint(n_classes, size=n_samples)
    w = rng.uniform(0, 1, size=n_samples)
    return X, y, w


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale, margin", [(32.0, 0.1), (4.0, 0.0), (10.0, -0.3)])
def test_matches_loop_reference(seed, scale, margin):
    X, y, w = _random_batch(seed)
    torch.manual_seed(seed)
    loss_fn = ProxyLoss(5, embedding_dim=7, scale=scale, margin=margin).double()
    # Unnormalised proxies of varied norms: the loss must normalise them.
    with torch.no_grad():
        loss_fn.proxies.mul_(torch.linspace(0.2, 5.0, 5, dtype=torch.float64)[:, None])
    proxies = loss_fn.proxies.detach().numpy().copy()

    got = loss_fn(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(w))
    expected = _reference_loss(X, y, proxies, w, scale, margin)
    assert got.dtype == torch.float64 and got.ndim == 0
    # softplus switches to the identity above 20: error <= exp(-20) per term.
    assert got.item() == pytest.approx(expected, rel=1e-9, abs=1e-9)

    unweighted = loss_fn(torch.from_numpy(X), torch.from_numpy(y))
    assert unweighted.item() == pytest.approx(
        _reference_loss(X, y, proxies, np.ones(len(y)), scale, margin), rel=1e-9
    )


def test_normalisation_of_embeddings():
    X, y, _ = _random_batch(3)
    loss_fn = ProxyLoss(5, embedding_dim=7).double()
    X = torch.from_numpy(X)
    a = loss_fn(X, torch.from_numpy(y))
    b = loss_fn(
        X * torch.rand(len(y), 1, dtype=torch.float64) * 100, torch.from_numpy(y)
    )
    torch.testing.assert_close(a, b)


def test_zero_weight_removes_sample():
    X, y, w = _random_batch(4, n_samples=10)
    loss_fn = ProxyLoss(5, embedding_dim=7).double()
    Xt, yt, wt = map(torch.from_numpy, (X, y, w))
    wt[3] = 0.0
    full = loss_fn(Xt, yt, wt)
    keep = np.arange(10) != 3
    dropped = loss_fn(Xt[keep], yt[keep], wt[keep])
    torch.testing.assert_close(full, dropped)

    # The sample's label and embedding no longer matter, and get no gradient.
    X2 = Xt.clone()
    X2[3] = torch.randn(7, dtype=torch.float64)
    y2 = yt.clone()
    y2[3] = (y2[3] + 1) % 5
    X2.requires_grad_(True)
    loss = loss_fn(X2, y2, wt)
    torch.testing.assert_close(loss, full)
    loss.backward()
    assert torch.all(X2.grad[3] == 0)
    assert torch.any(X2.grad[2] != 0)


def test_weights_scale_linearly():
    X, y, w = _random_batch(5)
    loss_fn = ProxyLoss(5, embedding_dim=7).double()
    Xt, yt, wt = map(torch.from_numpy, (X, y, w))
    torch.testing.assert_close(loss_fn(Xt, yt, 3 * wt), 3 * loss_fn(Xt, yt, wt))


def test_gradcheck_embeddings_and_proxies():
    torch.manual_seed(0)
    n_samples, n_classes, dim = 6, 4, 5
    loss_fn = ProxyLoss(n_classes, embedding_dim=dim, scale=3.0, margin=0.1).double()
    embeddings = torch.randn(n_samples, dim, dtype=torch.float64, requires_grad=True)
    proxies = torch.randn(n_classes, dim, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    weights = torch.rand(n_samples, dtype=torch.float64)

    def f(emb, prox):
        return torch.func.functional_call(
            loss_fn, {"proxies": prox}, (emb, labels), {"sample_weight": weights}
        )

    assert torch.autograd.gradcheck(f, (embeddings, proxies))

    # And the parameter itself receives the same gradient via backward().
    with torch.no_grad():
        loss_fn.proxies.copy_(proxies)
    loss_fn(embeddings, labels, weights).backward()
    expected = torch.autograd.grad(f(embeddings, proxies), proxies)[0]
    torch.testing.assert_close(loss_fn.proxies.grad, expected)


def test_gradcheck_default_scale():
    torch.manual_seed(1)
    loss_fn = ProxyLoss(3, embedding_dim=4).double()
    embeddings = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 2, 1])
    assert torch.autograd.gradcheck(lambda e: loss_fn(e, labels), (embeddings,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1e3, 1e6])
def test_large_scale_no_overflow(dtype, scale):
    torch.manual_seed(0)
    loss_fn = ProxyLoss(4, embedding_dim=3, scale=scale).to(dtype)
    # Embeddings exactly on a proxy and exactly opposite to one.
    p = loss_fn.proxies.detach()
    embeddings = torch.cat([p, -p, torch.randn(5, 3, dtype=dtype)]).requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 3, 1, 2, 3, 0, 0, 1, 2, 3, 0])
    loss = loss_fn(embeddings, labels)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(loss_fn.proxies.grad).all()
    # With huge scale the softplus is linear: loss ~ scale * sum of hinge terms.
    assert loss.item() > scale * 0.01


def test_perfect_embeddings_give_small_loss():
    # Orthogonal proxies, embeddings on their proxy: L+ and L- are tiny.
    loss_fn = ProxyLoss(3, embedding_dim=3, scale=64.0, margin=0.1).double()
    with torch.no_grad():
        loss_fn.proxies.copy_(torch.eye(3, dtype=torch.float64))
    embeddings = torch.eye(3, dtype=torch.float64) * 2
    good = loss_fn(embeddings, torch.tensor([0, 1, 2]))
    bad = loss_fn(embeddings, torch.tensor([1, 2, 0]))
    # Per sample: softplus(-64*0.9) + 2*softplus(64*0.1), divided by C=3.
    expected = math.log1p(math.exp(-57.6)) + 2 * math.log1p(math.exp(6.4))
    assert good.item() == pytest.approx(expected, rel=1e-9)
    assert bad.item() > good.item() + 10


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    X = torch.randn(30, 8)
    y = torch.randint(0, 3, (30,))
    loss_fn = ProxyLoss(3, embedding_dim=8)
    emb = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(list(emb.parameters()) + list(loss_fn.parameters()), lr=0.05)
    first = loss_fn(emb(X), y).item()
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn(emb(X), y)
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_init_reproducible_and_shape():
    torch.manual_seed(42)
    a = ProxyLoss(6, embedding_dim=10)
    torch.manual_seed(42)
    b = ProxyLoss(6, embedding_dim=10)
    assert isinstance(a.proxies, torch.nn.Parameter)
    assert a.proxies.shape == (6, 10)
    torch.testing.assert_close(a.proxies, b.proxies)
    g = torch.Generator().manual_seed(3)
    a.reset_parameters(generator=g)
    assert not torch.equal(a.proxies, b.proxies)
    assert a.normalized_proxies().norm(dim=1).sub(1).abs().max() < 1e-6
    assert "scale=32.0" in repr(a) and "margin=0.1" in repr(a)


def test_accepts_array_like_inputs_and_empty_batch():
    loss_fn = ProxyLoss(3, embedding_dim=2)
    loss = loss_fn(np.ones((2, 2), dtype=np.float32), [0, 2], [1.0, 0.5])
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    empty = loss_fn(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    assert empty.item() == 0.0


def test_errors():
    loss_fn = ProxyLoss(3, embedding_dim=4)
    emb = torch.randn(5, 4)
    labels = torch.tensor([0, 1, 2, 1, 0])
    with pytest.raises(ValueError, match="labels must lie in"):
        loss_fn(emb, torch.tensor([0, 1, 3, 1, 0]))
    with pytest.raises(ValueError, match="labels must lie in"):
        loss_fn(emb, torch.tensor([0, -1, 2, 1, 0]))
    with pytest.raises(ValueError, match="labels must be integers"):
        loss_fn(emb, labels.float())
    with pytest.raises(ValueError, match="labels must have shape"):
        loss_fn(emb, labels[:4])
    with pytest.raises(ValueError, match="labels must have shape"):
        loss_fn(emb, labels[:, None])
    with pytest.raises(ValueError, match="embeddings must have shape"):
        loss_fn(torch.randn(5, 3), labels)
    with pytest.raises(ValueError, match="embeddings must have shape"):
        loss_fn(torch.randn(5), labels)
    with pytest.raises(ValueError, match="floating-point"):
        loss_fn(torch.ones(5, 4, dtype=torch.long), labels)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        loss_fn(emb, labels, torch.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        loss_fn(emb, labels, torch.tensor([1.0, 1.0, -0.1, 1.0, 1.0]))
    with pytest.raises(ValueError, match="finite"):
        loss_fn(emb, labels, torch.tensor([1.0, 1.0, float("nan"), 1.0, 1.0]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_classes": 0},
        {"n_classes": 2.5},
        {"n_classes": 3, "embedding_dim": 0},
        {"n_classes": 3, "scale": 0.0},
        {"n_classes": 3, "scale": -1.0},
        {"n_classes": 3, "scale": float("inf")},
        {"n_classes": 3, "margin": float("nan")},
    ],
)
def test_constructor_errors(kwargs):
    with pytest.raises(ValueError):
        ProxyLoss(**kwargs)
