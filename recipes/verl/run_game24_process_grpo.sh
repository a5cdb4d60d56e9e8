#!/usr/bin/env bash
# GRPO with process advantages on Game of 24 in verl 0.9.1, one GPU, a hub model. NOT RUN HERE (no GPU): pending.
#
# Needs a venv with verl's GPU extras (vLLM) and this repo (`pip install -e . --no-deps` plus its light deps, as
# scripts/test_verl_cpu.sh does on CPU). The legacy trainer (trainer.use_v1=False) is used because verl 0.9.1 reads
# `agent_loop_manager_class` only there: the step-reward manager puts each step's reward on its last token.
# That key is not in verl's config schema, hence the `+` (hydra adds it); not checked on a GPU.
#
#   python recipes/verl/make_dataset.py --env-id reason_gym/Game24-v0 --out "$DATA"
#   recipes/verl/run_game24_process_grpo.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${DATA:-$HOME/data/reason_gym_game24}"
MODEL="${MODEL:-Qwen/Qwen2.5-0.5B-Instruct}"

python -m verl.trainer.main_ppo \
    trainer.use_v1=False \
    algorithm.adv_estimator=reason_gym_process \
    algorithm.norm_adv_by_std_in_grpo=True \
    algorithm.use_kl_in_reward=False \
    data.train_files="$DATA/train.parquet" \
    data.val_files="$DATA/val.parquet" \
    data.train_batch_size=64 \
    data.max_prompt_length=512 \
    data.max_response_length=512 \
    data.return_raw_chat=True \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.model.external_lib=agents.integrations.verl \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.ppo_mini_batch_size=64 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.mode=async \
    actor_rollout_ref.rollout.n=8 \
    actor_rollout_ref.rollout.temperature=1.0 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.5 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.rollout.agent.agent_loop_config_path=recipes/verl/agent_loop.yaml \
    +actor_rollout_ref.rollout.agent.agent_loop_manager_class=agents.integrations.verl.StepRewardAgentLoopManager \
    actor_rollout_ref.rollout.agent.num_workers=4 \
    trainer.n_gpus_per_node=1 \
    trainer.nnodes=1 \
    trainer.total_epochs=1 \
    trainer.test_freq=20 \
    trainer.save_freq=-1 \
    trainer.logger='["console"]' \
    trainer.project_name=reason_gym \
    trainer.experiment_name=game24_process_grpo \
    "$@"
