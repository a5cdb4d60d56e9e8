"""Registration of every reason_gym environment with Gymnasium (run on ``import reason_gym``)."""

from gymnasium.envs.registration import register

register(id="reason_gym/Game24-v0", entry_point="reason_gym.envs.game24:Game24Env")
