"""agents: policies, planners and trainers that act on reason_gym environments only through reset/step."""
