"""Slider explorers: thin ipywidgets controls over the library's pure functions.

Each explorer draws one matplotlib figure into an Image widget (:mod:`.base`); a lesson shows one
by leaving it as the last expression of a cell.

==========================  ======  ==========================================================
explorer                    lesson  what its controls move
==========================  ======  ==========================================================
MixtureScoreExplorer        01      a 1-D mixture's parameters; its density and score
ProjectionVarianceExplorer  03      Hutchinson's M, kind of projection, the matrix's diagonal
SigmaExplorer               04      σ over a 1-D density: p_σ, its score, a learned score
LangevinExplorer            05      Langevin step size and number of steps on a 2-D density
TrajectoryExplorer          06      the stored state of an annealed sampler's trajectory
SDETimeExplorer             07      t of the VE SDE: the marginal p_t and its score
==========================  ======  ==========================================================

:mod:`.cases` builds each of them the way the tests and the latency benchmarks move them.
"""

from .base import Explorer
from .noise import SDETimeExplorer, SigmaExplorer
from .sampling import LangevinExplorer, TrajectoryExplorer
from .score import MixtureScoreExplorer, ProjectionVarianceExplorer

__all__ = ["Explorer", "MixtureScoreExplorer", "ProjectionVarianceExplorer", "SigmaExplorer", "LangevinExplorer",
           "TrajectoryExplorer", "SDETimeExplorer"]
