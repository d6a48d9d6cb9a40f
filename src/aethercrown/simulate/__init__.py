"""The demo company: a simulated SaaS business with known ground truth (``generate``)."""

from aethercrown.simulate.config import SimConfig
from aethercrown.simulate.generator import SimulatedCompany, generate
from aethercrown.simulate.truth import Truth

__all__ = ["SimConfig", "SimulatedCompany", "Truth", "generate"]
