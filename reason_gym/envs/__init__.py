"""Registration of every reason_gym environment with Gymnasium (run on ``import reason_gym``)."""

from gymnasium.envs.registration import register
from gymnasium.envs.registration import registry as gym_registry

register(id="reason_gym/Game24-v0", entry_point="reason_gym.envs.game24:Game24Env")
register(id="reason_gym/GSM8K-v0", entry_point="reason_gym.envs.gsm8k:GSM8KEnv")
register(id="reason_gym/MATH-v0", entry_point="reason_gym.envs.competition_math:CompetitionMathEnv")
register(id="reason_gym/Arithmetic-v0", entry_point="reason_gym.envs.arithmetic:ArithmeticEnv")
register(id="reason_gym/HumanEval-v0", entry_point="reason_gym.envs.humaneval:HumanEvalEnv")
register(id="reason_gym/MBPP-v0", entry_point="reason_gym.envs.mbpp:MBPPEnv")
REMOTE_ID = "reason_gym/Remote-v0"
register(id=REMOTE_ID, entry_point="reason_gym.envs.remote:RemoteEnv")

TASK_IDS = tuple(sorted(env_id for env_id in gym_registry if env_id.startswith("reason_gym/") and env_id != REMOTE_ID))
"""Every registered task (``reason_gym/Remote-v0`` is a client of a served task, which needs ``base_url=``)."""
