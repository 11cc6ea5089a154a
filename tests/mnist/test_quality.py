"""lessons_lib.mnist.quality: the Fréchet distance against its closed form, the class histogram on a
classifier whose logits we control, and the shipped MNIST classifier on held-out digits."""

import numpy as np
import pytest
import torch
from torch import nn

from lessons_lib.mnist import mnist_train_heldout
from lessons_lib.mnist.quality import (
    MNISTClassifier,
    class_histogram,
    classifier_outputs,
    frechet_distance,
    load_classifier,
    nearest_neighbours,
    sample_quality,
)


def exact_fd_diagonal(mu_a, var_a, mu_b, var_b):
    """FD between N(μa, diag a) and N(μb, diag b): the covariances commute, so
    tr((Ca Cb)^{1/2}) = Σ √(a b)."""
    return float(((mu_a - mu_b) ** 2).sum() + var_a.sum() + var_b.sum() - 2 * np.sqrt(var_a * var_b).sum())


def gaussian_sample(rng, mu, cov, n):
    return rng.multivariate_normal(mu, cov, size=n)


def test_fd_matches_closed_form_on_the_sample_statistics():
    # With diagonal covariances built exactly into the samples (whitened, then scaled), the
    # sample means and covariances are the chosen ones and FD must equal the formula.
    rng = np.random.default_rng(0)
    d, n = 5, 400
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    var_a, var_b = rng.uniform(0.2, 3.0, d), rng.uniform(0.2, 3.0, d)

    def exact_sample(mu, var):
        z = rng.normal(size=(n, d))
        z -= z.mean(0)
        chol = np.linalg.cholesky(np.cov(z, rowvar=False))
        z = z @ np.linalg.inv(chol).T  # sample covariance exactly I
        return mu + z * np.sqrt(var)

    a, b = exact_sample(mu_a, var_a), exact_sample(mu_b, var_b)
    assert frechet_distance(a, b) == pytest.approx(exact_fd_diagonal(mu_a, var_a, mu_b, var_b), rel=1e-9)


def test_fd_non_commuting_covariances_against_an_independent_formula():
    # For 2×2 SPD matrices, √M of M = Ca Cb (positive eigenvalues) has trace √(tr M + 2√det M).
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])
    b = rng.normal(size=(250, 2)) @ np.array([[0.4, -0.8], [0.2, 1.5]]) + 1.0
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    m = ca @ cb
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    exact = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * tr_sqrt
    assert frechet_distance(a, b) == pytest.approx(exact, rel=1e-10)


def test_fd_is_near_zero_for_two_large_samples_of_one_distribution_and_symmetric():
    rng = np.random.default_rng(2)
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    a = gaussian_sample(rng, np.zeros(3), cov, 20000)
    b = gaussian_sample(rng, np.zeros(3), cov, 20000)
    fd = frechet_distance(a, b)
    assert 0.0 <= fd < 2e-3
    assert frechet_distance(b, a) == pytest.approx(fd, rel=1e-9, abs=1e-12)
    # A mean shift of 1 in one coordinate adds 1.
    shifted = b + np.array([1.0, 0.0, 0.0])
    assert frechet_distance(a, shifted) == pytest.approx(1.0, abs=0.05)
    # torch tensors (float32) give the same answer up to float32 rounding of the inputs.
    assert frechet_distance(torch.tensor(a), torch.tensor(b)) == pytest.approx(fd, rel=1e-9, abs=1e-12)


def test_fd_handles_singular_covariances():
    # More features than samples, and a constant feature: covariances are singular.
    rng = np.random.default_rng(3)
    a = rng.normal(size=(10, 20))
    a[:, 0] = 1.0
    assert np.isfinite(frechet_distance(a, a))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), "same number of features"),
        (np.zeros(10), np.zeros((10, 1)), "shape"),
        (np.zeros((10, 2, 2)), np.zeros((10, 4)), "shape"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2 samples"),
        (np.full((5, 3), np.nan), np.zeros((10, 3)), "NaN"),
    ],
)
def test_fd_rejects_bad_inputs(a, b, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(a, b)


class FixedLogits(nn.Module):
    """A 'classifier' whose answer the test controls: an image's class is the value of its
    first pixel times 10 (mod 10), so that the images stay in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        cls = (10 * x[:, 0, 0, 0]).round().long() % 10
        return torch.nn.functional.one_hot(cls, 10).float() * 5.0 + self.dummy


def images_of_classes(classes):
    x = torch.zeros(len(classes), 1, 28, 28)
    x[:, 0, 0, 0] = torch.tensor(classes, dtype=torch.float32) / 10
    return x


def test_class_histogram_counts_and_balance():
    classes = [0] * 7 + [3] * 2 + [9] * 1
    hist = class_histogram(images_of_classes(classes), FixedLogits(), batch_size=3)
    assert hist.counts.tolist() == [7, 0, 0, 2, 0, 0, 0, 0, 0, 1]
    assert hist.counts.dtype == torch.int64
    assert hist.fractions.sum() == pytest.approx(1.0)
    # TV = ½ Σ|p − 0.1| = ½ (0.6 + 0.1 + 0 + 7·0.1) = 0.7
    assert hist.tv_to_uniform == pytest.approx(0.7)
    balanced = class_histogram(images_of_classes(list(range(10)) * 3), FixedLogits())
    assert balanced.counts.tolist() == [3] * 10 and balanced.tv_to_uniform == pytest.approx(0.0)
    one_class = class_histogram(images_of_classes([4] * 5), FixedLogits())
    assert one_class.tv_to_uniform == pytest.approx(0.9)


def test_class_histogram_restores_training_mode_and_rejects_bad_images():
    clf = FixedLogits().train()
    class_histogram(images_of_classes([1, 2]), clf)
    assert clf.training
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        class_histogram(torch.zeros(4, 3, 28, 28), clf)
    with pytest.raises(ValueError, match="NaN"):
        class_histogram(torch.full((2, 1, 28, 28), float("nan")), clf)


def test_classifier_shapes_and_batched_outputs_match_one_pass():
    torch.manual_seed(0)
    clf = MNISTClassifier().eval()
    x = torch.rand(7, 1, 28, 28)
    assert clf.features(x).shape == (7, MNISTClassifier.feature_dim)
    assert clf(x).shape == (7, 10)
    feats, logits = classifier_outputs(x, clf, batch_size=3)
    with torch.no_grad():
        torch.testing.assert_close(feats, clf.features(x))
        torch.testing.assert_close(logits, clf(x))
    n_bytes = sum(p.numel() * p.element_size() for p in clf.parameters())
    assert n_bytes < 1_000_000


def test_sample_quality_fields_with_an_untrained_network():
    torch.manual_seed(0)
    clf = MNISTClassifier()
    a, b = torch.rand(20, 1, 28, 28), torch.rand(30, 1, 28, 28)
    q = sample_quality(a, b, clf)
    assert q.n == 20 and q.n_reference == 30
    assert len(q.class_fractions) == 10 and sum(q.class_fractions) == pytest.approx(1.0, abs=1e-3)
    assert 0.1 <= q.mean_confidence <= 1.0
    assert q.fd >= 0.0 and 0.0 <= q.tv_to_uniform <= 0.9
    assert "FD" in str(q)


def test_load_classifier_names_the_command_when_the_file_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m lessons_lib.mnist.train_classifier"):
        load_classifier(tmp_path / "nope.pt")


def test_load_classifier_round_trip(tmp_path):
    torch.manual_seed(0)
    clf = MNISTClassifier()
    torch.save(clf.state_dict(), tmp_path / "c.pt")
    loaded = load_classifier(tmp_path / "c.pt")
    assert not loaded.training
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), clf.eval()(x))


# --- the shipped classifier on real digits ------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    # the shipped classifier and the held-out digits of the test split bundled in data/mnist
    return load_classifier(), mnist_train_heldout()


def test_shipped_classifier_accuracy_on_heldout(shipped):
    clf, split = shipped
    _, logits = classifier_outputs(split.heldout, clf, features=False)
    acc = float((logits.argmax(1) == split.heldout_labels).double().mean())
    assert acc >= 0.97, f"held-out accuracy {acc:.4f}"


def test_fd_separates_real_digits_from_noise(shipped):
    clf, split = shipped
    h = split.heldout
    real = sample_quality(h[:1000], h[1000:], clf)
    noise = sample_quality(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)), h[1000:], clf)
    assert real.fd * 10 < noise.fd, (real.fd, noise.fd)
    assert real.tv_to_uniform < 0.08 and noise.tv_to_uniform > 0.5
    assert real.mean_confidence > 0.95


def test_nearest_neighbours_match_brute_force():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(300, 1, 28, 28, generator=g)
    images = torch.cat([torch.rand(40, 1, 28, 28, generator=g), train[:5]])  # the last five are copies
    brute = torch.stack([(train - x).flatten(1).norm(dim=1).min() for x in images])
    brute_index = torch.stack([(train - x).flatten(1).norm(dim=1).argmin() for x in images])
    got, index = nearest_neighbours(images, train, chunk=7)
    torch.testing.assert_close(got, brute.double(), rtol=1e-6, atol=1e-5)
    assert torch.equal(index, brute_index) and index[-5:].tolist() == [0, 1, 2, 3, 4]
    assert (got[-5:] < 1e-5).all() and (got[:-5] > 5).all()
    with pytest.raises(ValueError, match="train must have shape"):
        nearest_neighbours(images, torch.rand(3, 28))
