"""Trainers: GRPO through the environments' ``reset`` / ``step`` (:mod:`.grpo`), SFT on solver traces (:mod:`.sft`),
and what they share: resumable checkpoints and TensorBoard logging (:mod:`.checkpoints`)."""
