"""lessons_lib: the tested helper library behind the score-matching course.

One concept per module: ``densities`` (exact reference densities and scores), ``autodiff``
(scores by autograd, Jacobian traces), ``losses`` (ESM, ISM, SSM, SSM-VR, DSM, NCSN), ``noise``
(σ schedules, perturbation), ``samplers`` (Langevin, annealed Langevin), ``sde`` (score SDEs:
reverse-time and probability-flow sampling, likelihood), ``nets`` (score
networks), ``training`` (the one training loop), ``data`` (datasets), ``plotting``, ``utils``.
"""

from .utils import get_device, seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "get_device", "__version__"]
