"""Registration of every reason_gym environment with Gymnasium (run on ``import reason_gym``)."""

from gymnasium.envs.registration import register

register(id="reason_gym/Game24-v0", entry_point="reason_gym.envs.game24:Game24Env")
register(id="reason_gym/GSM8K-v0", entry_point="reason_gym.envs.gsm8k:GSM8KEnv")
register(id="reason_gym/MATH-v0", entry_point="reason_gym.envs.competition_math:CompetitionMathEnv")
register(id="reason_gym/Arithmetic-v0", entry_point="reason_gym.envs.arithmetic:ArithmeticEnv")
register(id="reason_gym/HumanEval-v0", entry_point="reason_gym.envs.humaneval:HumanEvalEnv")
register(id="reason_gym/MBPP-v0", entry_point="reason_gym.envs.mbpp:MBPPEnv")
register(id="reason_gym/Remote-v0", entry_point="reason_gym.envs.remote:RemoteEnv")
