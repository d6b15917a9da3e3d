"""Fine-tuning: one loop on ``accelerate`` (CPU, DDP/FSDP via ``accelerate launch``), LoRA per
embodiment (peft, see ``vla.adapters``), atomic checkpoints with exact resume, and ``vla demo``.

Entry points:

* ``finetune.trainer.train(policy, PipelineConfig, TrainConfig, out_dir, embodiment=None)`` ->
  ``TrainResult`` (``out_dir/policy`` is the servable checkpoint; ``out_dir/checkpoints/step_N`` hold
  ``training_state/`` for resume; ``losses.jsonl``, ``loss.png``, ``tensorboard/``)
* ``finetune.launch.train_processes(make_policy, PipelineConfig, TrainConfig, out_dir, processes=2)``: the
  same loop on N spawned data-parallel ranks (gloo on CPU cores) without a launcher command
* ``finetune.config.TrainConfig`` / ``LoraSettings``; ``finetune.recipes.demo_config()``
* ``vla finetune`` (``finetune/commands/finetune.py``), ``vla demo`` (``finetune/commands/demo.py``)
"""
