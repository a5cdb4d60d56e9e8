"""reason_gym: LLM reasoning tasks as Gymnasium environments.

Importing the package registers its environments, so ``gymnasium.make("reason_gym/Game24-v0")`` works after
``import reason_gym`` (or without it, as ``gymnasium.make("reason_gym:reason_gym/Game24-v0")``).
"""

from reason_gym import envs as envs
from reason_gym.core import EpisodeState, ReasoningEnv

__version__ = "0.1.0"
__all__ = ["EpisodeState", "ReasoningEnv", "__version__"]
