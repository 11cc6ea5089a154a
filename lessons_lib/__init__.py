"""lessons_lib: the tested helper library behind the score-matching course.

The mathematics, one concept per module: ``densities`` (exact reference densities and scores),
``toy_data`` (the lessons' mixtures), ``autodiff`` (scores by autograd, Jacobian traces),
``noise`` (σ schedules, perturbation), ``losses`` (ESM, ISM, SSM, SSM-VR, DSM, NCSN, EDM),
``nets`` (small score and energy networks), ``samplers`` (Langevin, annealed Langevin,
in-painting), ``sde`` (score SDEs: reverse-time and probability-flow sampling, likelihood),
``edm`` (EDM's Heun sampler), ``training`` (the one training loop), ``stats`` (error bars),
``plotting``, ``utils`` (seeds and devices).

Below it, in this order, the subpackages: ``mnist`` (the MNIST application), ``explorers``
(the slider explorers) and ``course`` (exercise checks, the student edition, problem sets).
A layer imports only from the layers above it (docs/contributing.md).
"""

from .utils import get_device, seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "get_device", "__version__"]
