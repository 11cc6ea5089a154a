"""How good are MNIST samples? A small classifier, a Fréchet distance in its feature space,
and the class histogram of the samples.

The measure is the MNIST analogue of the FID (Heusel et al. 2017), with a small CNN trained
on MNIST in place of Inception:

* ``frechet_distance``: fit a Gaussian N(μ, C) to each set of features and take the Fréchet
  (2-Wasserstein) distance between the two Gaussians,
  ``FD = ‖μa − μb‖² + tr(Ca + Cb − 2 (Ca Cb)^{1/2})``. Lower is better; 0 for identical
  statistics. It has a positive bias of order (feature dimension)/n, so compare values
  computed with the same numbers of images.
* ``class_histogram``: how many samples the classifier puts in each class, and how far that
  is from uniform (total variation distance; MNIST's classes are close to balanced).
* ``sample_quality``: both of the above plus the classifier's mean confidence.
* ``nearest_neighbours``: how far each image is from its nearest training image, and which
  one it is — a network that memorised its training digits produces samples much closer to
  them than held-out real digits are.

The classifier is trained by ``python -m lessons_lib.mnist.train_classifier`` and shipped as
:data:`CLASSIFIER_CHECKPOINT`; ``load_classifier()`` loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .._validate import require_count, require_module, require_path, require_tensor
from .checkpoint import read_torch_file

__all__ = [
    "MNISTClassifier",
    "CLASSIFIER_CHECKPOINT",
    "load_classifier",
    "classifier_outputs",
    "frechet_distance",
    "ClassHistogram",
    "class_histogram",
    "SampleQuality",
    "sample_quality",
    "nearest_neighbours",
]

N_CLASSES = 10
#: The classifier the course ships, the judge of sample quality.
CLASSIFIER_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist_classifier.pt"
TRAIN_COMMAND = "python -m lessons_lib.mnist.train_classifier"


class MNISTClassifier(nn.Module):
    """A small CNN for 28×28 digits: three conv blocks, a 128-d feature layer, 10 logits.

    ``features(x)`` returns the 128-d penultimate activations (the space the Fréchet distance
    is measured in); ``forward(x)`` returns the logits. Inputs: (B, 1, 28, 28) in [0, 1].
    About 107k parameters (≈ 0.4 MB as float32).
    """

    feature_dim = 128

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # 16 × 14 × 14
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 32 × 7 × 7
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 × 3 × 3
            nn.Flatten(),
            nn.Linear(64 * 3 * 3, self.feature_dim), nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, N_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d penultimate activations, shape (B, 128)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits, shape (B, 10)."""
        return self.head(self.dropout(self.features(x)))


def load_classifier(path: str | Path | None = None, device=None) -> MNISTClassifier:
    """Load the trained classifier (default :data:`CLASSIFIER_CHECKPOINT`) in eval mode.
    Raises ``FileNotFoundError`` naming the command that creates it."""
    path = require_path(path, "path") if path is not None else CLASSIFIER_CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no classifier checkpoint at {path}; create it with `{TRAIN_COMMAND}`")
    what = f"the MNIST classifier's weights (made by `{TRAIN_COMMAND}`)"
    state = read_torch_file(path, what)
    model = MNISTClassifier()
    try:
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, AttributeError) as err:
        keys = sorted(map(str, state))[:6] if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not {what}: it holds {keys}, not MNISTClassifier's weights") from err
    if device is not None:
        model.to(device)
    return model.eval()


#: How far outside [0, 1] a pixel may lie (unclipped sampler output overshoots a little; 0..255 does not pass).
PIXEL_TOLERANCE = 1.0


def _check_images(images, name: str) -> torch.Tensor:
    """Grey images (N, 1, 28, 28) (or (N, 28, 28)) with pixels in [0, 1], as float32."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    require_tensor(images, name, floating=False, finite=False)
    if images.dtype == torch.uint8:
        raise ValueError(f"{name} are uint8 (grey levels 0..255); the classifier reads pixels in [0, 1]: "
                         f"pass {name}.float() / 255")
    if images.dim() == 3:
        images = images[:, None]
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"{name} must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    images = images.float()
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values (did the sampler diverge?)")
    lo, hi = float(images.min()), float(images.max())
    if lo < -PIXEL_TOLERANCE or hi > 1 + PIXEL_TOLERANCE:
        hint = f"; divide by 255 ({name} / 255)" if hi > 2 else "; clamp sampler output with .clamp(0, 1)"
        raise ValueError(f"{name} must have pixels in [0, 1] (up to {PIXEL_TOLERANCE:g} outside), got values from "
                         f"{lo:.3g} to {hi:.3g}{hint}")
    return images


@torch.no_grad()
def classifier_outputs(images, classifier: nn.Module, *, batch_size: int = 500,
                       features: bool = True, logits: bool = True):
    """Run ``classifier`` over ``images`` in batches (eval mode, no gradients).

    Returns ``(features, logits)`` on the CPU (either is ``None`` when not asked for);
    features come from ``classifier.features``. The classifier's train/eval mode is restored.
    """
    images = _check_images(images, "images")
    require_module(classifier, "classifier")
    batch_size = require_count(batch_size, "batch_size")
    was_training = classifier.training
    classifier.eval()
    try:
        param = next(classifier.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        feats, outs = [], []
        for chunk in images.split(batch_size):
            chunk = chunk.to(device)
            if features:
                f = classifier.features(chunk)
                feats.append(f.cpu())
                if logits and isinstance(classifier, MNISTClassifier):
                    outs.append(classifier.head(f).cpu())  # eval mode: dropout is the identity
                    continue
            if logits:
                outs.append(classifier(chunk).cpu())
    finally:
        classifier.train(was_training)
    return (torch.cat(feats) if features else None, torch.cat(outs) if logits else None)


def _as_features(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of features, shape (n_samples, n_features), got {x!r:.40}") from err
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features), got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples to estimate a covariance, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off
    eigenvalues clipped to 0)."""
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features, in float64.

    ``feats_a`` (n_a, d) and ``feats_b`` (n_b, d), torch tensors or arrays, n ≥ 2 each::

        FD = ‖μa − μb‖² + tr(Ca) + tr(Cb) − 2 tr((Ca Cb)^{1/2})

    with μ the sample means and C the unbiased sample covariances. Ca Cb is not symmetric, so
    the trace of its square root is computed as tr((Ca^{1/2} Cb Ca^{1/2})^{1/2}): the two
    matrices have the same eigenvalues, and the second is symmetric PSD, so ``eigh`` gives them
    stably even when the covariances are singular (dead ReLU units, n < d).
    Symmetric in its arguments; ≥ 0 up to round-off (clipped at 0).
    """
    a = _as_features(feats_a, "feats_a")
    b = _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b must have the same number of features, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    c_a = np.atleast_2d(np.cov(a, rowvar=False))
    c_b = np.atleast_2d(np.cov(b, rowvar=False))
    s_a = _sqrtm_psd(c_a)
    m = s_a @ c_b @ s_a
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(eig, 0.0, None)).sum()
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(c_a) + np.trace(c_b) - 2.0 * tr_sqrt)
    return max(fd, 0.0)


class ClassHistogram(NamedTuple):
    """``counts``: int64 (10,), samples the classifier assigns to each digit (arg-max of the
    logits). ``tv_to_uniform``: total variation distance of the class fractions p from uniform,
    ½ Σ_k |p_k − 1/10| — 0 when every digit is equally frequent, 0.9 when all samples are one
    digit. (Real MNIST scores ≈ 0.01–0.02: its classes are nearly, not exactly, balanced.)"""

    counts: torch.Tensor
    tv_to_uniform: float

    @property
    def fractions(self) -> torch.Tensor:
        return self.counts.double() / self.counts.sum()


def _histogram(logits: torch.Tensor) -> ClassHistogram:
    if logits.dim() != 2 or logits.shape[1] != N_CLASSES:
        raise ValueError(f"the classifier must return logits of shape (B, {N_CLASSES}), got {tuple(logits.shape)}")
    counts = torch.bincount(logits.argmax(1), minlength=N_CLASSES)
    p = counts.double() / counts.sum()
    return ClassHistogram(counts, float(0.5 * (p - 1.0 / N_CLASSES).abs().sum()))


def class_histogram(images, classifier: nn.Module, *, batch_size: int = 500) -> ClassHistogram:
    """Class counts of ``images`` (N, 1, 28, 28) under ``classifier`` (any module returning
    (B, 10) logits) and their total variation distance to uniform; see :class:`ClassHistogram`."""
    _, logits = classifier_outputs(images, classifier, batch_size=batch_size, features=False)
    return _histogram(logits)


@dataclass
class SampleQuality:
    """The sample-quality summary returned by :func:`sample_quality`."""

    fd: float                    # Fréchet distance to the reference images, classifier features
    class_fractions: list[float]  # fraction of samples classified as 0, 1, …, 9
    tv_to_uniform: float          # ½ Σ |p_k − 1/10|
    mean_confidence: float        # mean over samples of max_k softmax(logits)_k
    n: int                        # number of samples
    n_reference: int              # number of reference images

    def __str__(self) -> str:
        fracs = " ".join(f"{f:.2f}" for f in self.class_fractions)
        return (f"FD {self.fd:.2f} (n={self.n} vs {self.n_reference} real) | class fractions 0-9: {fracs} "
                f"| TV to uniform {self.tv_to_uniform:.3f} | mean confidence {self.mean_confidence:.3f}")


def sample_quality(images, reference_images, classifier: nn.Module | None = None, *,
                   batch_size: int = 500) -> SampleQuality:
    """Score ``images`` (N, 1, 28, 28) in [0, 1] against ``reference_images`` (held-out real
    digits). ``classifier`` defaults to :func:`load_classifier()`.

    * ``fd``: :func:`frechet_distance` between the classifier's 128-d features of the two sets;
    * ``class_fractions`` and ``tv_to_uniform``: see :class:`ClassHistogram`;
    * ``mean_confidence``: (1/N) Σ_i max_k softmax(f(x_i))_k — low when samples look like no digit.

    Clamp sampler output to [0, 1] first, as the real digits are. The FD is biased upwards for
    small N; compare samples with the same N and the same reference set.
    """
    classifier = load_classifier() if classifier is None else classifier
    _check_images(reference_images, "reference_images")
    feats, logits = classifier_outputs(images, classifier, batch_size=batch_size)
    ref_feats, _ = classifier_outputs(reference_images, classifier, batch_size=batch_size, logits=False)
    hist = _histogram(logits)
    conf = torch.softmax(logits.double(), dim=1).max(1).values.mean()
    return SampleQuality(
        fd=frechet_distance(feats, ref_feats),
        class_fractions=[round(float(f), 4) for f in hist.fractions],
        tv_to_uniform=hist.tv_to_uniform,
        mean_confidence=float(conf),
        n=int(feats.shape[0]),
        n_reference=int(ref_feats.shape[0]),
    )


def nearest_neighbours(images, train, *, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image x, min over training images t of ‖x − t‖₂ (pixels flattened) and the index
    of that t: ``(distances, indices)``, float64 and int64 of shape (n,).

    ``images`` (n, 1, 28, 28) and ``train`` (m, 1, 28, 28); computed in chunks of
    ``chunk`` images with ‖x‖² − 2x·t + ‖t‖² in float64.
    """
    chunk = require_count(chunk, "chunk")
    x = _check_images(images, "images").flatten(1).double()
    t = _check_images(train, "train").flatten(1).double().to(x.device)
    if x.shape[1] != t.shape[1]:
        raise ValueError(f"images and train must have the same image size, got {x.shape[1]} and {t.shape[1]} pixels")
    t_sq = (t**2).sum(1)
    distances, indices = [], []
    for part in x.split(chunk):
        d2 = (part**2).sum(1, keepdim=True) - 2 * part @ t.T + t_sq
        nearest = d2.min(1)
        distances.append(nearest.values.clamp_min(0).sqrt())
        indices.append(nearest.indices)
    return torch.cat(distances), torch.cat(indices)
