"""MNIST end to end: train a noise-conditional score network and sample digits from it.

* :mod:`~lessons_lib.mnist.data` — the digits: :func:`load_mnist`, :func:`mnist_train_heldout`
  (the training images and the fixed held-out set every quality figure uses), :class:`MNISTError`;
* :mod:`~lessons_lib.mnist.unet` — :class:`NCSNUNet`, the score network s_θ(x, σ);
* :mod:`~lessons_lib.mnist.checkpoint` — :class:`Checkpoint`, :func:`save_checkpoint`,
  :func:`load_checkpoint`, the network's arithmetic (float32 or bfloat16), :data:`SCORE_CHECKPOINT`;
* :mod:`~lessons_lib.mnist.recipe` — :data:`RECIPE` (the shipped checkpoint's training settings)
  and :func:`train_ncsn`;
* :mod:`~lessons_lib.mnist.sampling` — the registry :data:`SAMPLERS` (EDM's Heun sampler, the
  course's default, and lesson 06's annealed Langevin) and :func:`sample`;
* :mod:`~lessons_lib.mnist.quality` — the classifier that judges samples, the Fréchet distance
  in its features, class histograms, nearest training images; :data:`CLASSIFIER_CHECKPOINT`;
* ``python -m lessons_lib.mnist train|sample`` — the command line (:mod:`lessons_lib.mnist.__main__`);
  ``python -m lessons_lib.mnist.train_classifier`` makes the shipped classifier.

Which paper each ingredient comes from: the σ²-weighted loss over a geometric schedule and
annealed Langevin sampling are Song & Ermon 2019 (NCSN; they used σ₁ = 1, L = 10, no EMA and
no final denoising step). σ₁ about the largest distance between training points, the output
scaling s = f/σ, the EMA of the weights and the final denoising step are Song & Ermon 2020
("Improved techniques for training score-based generative models", NCSNv2). The probability-flow
ODE is Song et al. 2021; continuous log-normal σ, the preconditioning (c_skip, c_out, c_in), the
loss weighting, the ρ = 7 step schedule and the Heun sampler are Karras, Aittala, Aila & Laine
2022 ("Elucidating the design space of diffusion-based generative models", EDM).
"""

from .checkpoint import (
    PRECISIONS,
    SCORE_CHECKPOINT,
    Checkpoint,
    autocast,
    load_checkpoint,
    native_bfloat16,
    save_checkpoint,
)
from .data import MNISTError, MNISTSplit, heldout_indices, load_mnist, mnist_train_heldout
from .quality import (
    CLASSIFIER_CHECKPOINT,
    MNISTClassifier,
    class_histogram,
    frechet_distance,
    load_classifier,
    nearest_neighbours,
    sample_quality,
)
from .recipe import RECIPE, Recipe, train_ncsn
from .sampling import DEFAULT_SAMPLER, SAMPLERS, AnnealedLangevinSampler, HeunSampler, sample, sampler_settings
from .unet import NCSNUNet

__all__ = [
    "MNISTError", "MNISTSplit", "heldout_indices", "load_mnist", "mnist_train_heldout",
    "NCSNUNet",
    "SCORE_CHECKPOINT", "PRECISIONS", "Checkpoint", "autocast", "load_checkpoint", "native_bfloat16", "save_checkpoint",
    "RECIPE", "Recipe", "train_ncsn",
    "SAMPLERS", "DEFAULT_SAMPLER", "HeunSampler", "AnnealedLangevinSampler", "sample", "sampler_settings",
    "CLASSIFIER_CHECKPOINT", "MNISTClassifier", "load_classifier", "frechet_distance", "class_histogram",
    "sample_quality", "nearest_neighbours",
]
