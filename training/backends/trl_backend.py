"""transformers + peft + TRL: SFT, DPO and KTO with LoRA, on CPU or GPU."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from . import BackendError, TrainResult, TrainSpec, device, last_checkpoint

__all__ = ["TrlBackend", "last_checkpoint"]

logger = logging.getLogger(__name__)


def _lora_targets(model: Any) -> list[str]:
    """Every linear projection inside the transformer blocks (not the output head)."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    return sorted(names - {"lm_head", "score", "classifier"})


def _load(spec: TrainSpec) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # bf16 weights on a GPU (fp16 without bf16 units), fp32 on the CPU; 4-bit computes in the same type
    dtype = device.torch_dtype(device.weight_dtype(device.probe()))
    kwargs: dict[str, Any] = {"dtype": dtype}
    if spec.recipe.padding_free:
        kwargs["attn_implementation"] = "flash_attention_2"  # select() checked for CUDA and flash-attn
    if spec.recipe.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(spec.base_model, **kwargs)
    if spec.recipe.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model, tokenizer


def _peft_model(model: Any, spec: TrainSpec) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if spec.parent_adapter is not None:
        return PeftModel.from_pretrained(model, str(spec.parent_adapter), is_trainable=True)
    recipe = spec.recipe
    config = LoraConfig(
        r=recipe.lora_rank,
        lora_alpha=recipe.lora_alpha or 2 * recipe.lora_rank,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.target_modules or _lora_targets(model)),
        # A random-initialised tiny model cannot learn through frozen random norms (loss stalls near 1.3).
        modules_to_save=["norm"] if model.num_parameters() < 50_000_000 else None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _datasets(spec: TrainSpec) -> tuple[Any, Any]:
    from datasets import Dataset

    train = Dataset.from_list(spec.train_rows)
    evaluation = Dataset.from_list(spec.eval_rows) if spec.eval_rows else None
    return train, evaluation


def _common_args(spec: TrainSpec, has_eval: bool) -> dict[str, Any]:
    import torch

    recipe = spec.recipe
    on_gpu = torch.cuda.is_available()
    one_process = int(os.environ.get("WORLD_SIZE", "1")) == 1
    return {
        "output_dir": str(spec.output_dir / "checkpoints"),
        "learning_rate": recipe.learning_rate,
        "num_train_epochs": recipe.epochs,
        "per_device_train_batch_size": recipe.batch_size,
        "per_device_eval_batch_size": recipe.batch_size,
        "gradient_accumulation_steps": recipe.gradient_accumulation,
        "warmup_steps": recipe.warmup_steps,
        "lr_scheduler_type": "linear",
        "logging_steps": recipe.logging_steps,
        "save_strategy": "steps",
        "save_steps": recipe.save_steps,
        "save_total_limit": 2,
        "eval_strategy": "epoch" if has_eval else "no",
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": not on_gpu,
        # This CPU has no bf16 units; bf16 and checkpointing made training 3.2x and 1.5x slower.
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        "fp16": on_gpu and not torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": False,
        "dataloader_num_workers": 0,
        # halve the batch on an out-of-memory error; not across processes, whose batches must agree
        "auto_find_batch_size": recipe.auto_batch_size and on_gpu and one_process,
        "max_length": recipe.max_length,
        # (KTO keeps its own "sequential" order: its KL term is precomputed per position)
        **({"train_sampling_strategy": "group_by_length"} if recipe.group_by_length and spec.method != "kto" else {}),
    }


def _trainer(spec: TrainSpec, model: Any, tokenizer: Any, train: Any, evaluation: Any, callbacks: list[Any]) -> Any:
    args = _common_args(spec, evaluation is not None)
    if spec.method == "sft":
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(**args, assistant_only_loss=True, packing=False, padding_free=spec.recipe.padding_free)
        return SFTTrainer(
            model=model, args=config, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer, callbacks=callbacks
        )
    if spec.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**args, beta=spec.recipe.beta)
        return DPOTrainer(
            model=model, args=config, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer, callbacks=callbacks
        )
    if spec.method == "kto":
        from trl import KTOConfig, KTOTrainer

        labels = [bool(row["label"]) for row in spec.train_rows]
        desirable, undesirable = labels.count(True), labels.count(False)
        if not desirable or not undesirable:
            raise BackendError("KTO needs both desirable and undesirable examples in the training split.")
        # weight the rarer side up so both contribute alike (TRL recommends a 1:1 to 4:3 ratio)
        weights = {"desirable_weight": 1.0, "undesirable_weight": 1.0}
        if desirable > undesirable:
            weights["undesirable_weight"] = round(desirable / undesirable, 3)
        else:
            weights["desirable_weight"] = round(undesirable / desirable, 3)
        config = KTOConfig(**args, beta=spec.recipe.beta, **weights)
        return KTOTrainer(
            model=model, args=config, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer, callbacks=callbacks
        )
    raise BackendError(f"Unknown method {spec.method!r}.")


def _everyone_stops(stop: bool, args: Any) -> bool:
    """The stop decision of all processes together (any one asked: all stop at this step), so
    that no rank waits forever in the next step's gradient exchange."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stop
    flag = torch.tensor([int(stop)], device=args.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _callback(spec: TrainSpec) -> Any:
    from transformers import TrainerCallback

    hooks = spec.hooks

    class Reporter(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if logs and state.is_world_process_zero:
                hooks.on_log({"step": state.global_step, "epoch": round(state.epoch or 0.0, 3), **logs})

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                hooks.on_step(state.global_step, state.max_steps)
            if _everyone_stops(hooks.should_stop(), args):
                control.should_training_stop = True
                control.should_save = True  # leave a checkpoint to resume from

    return Reporter()


class TrlBackend:
    name = "trl"
    reason = ""

    def load(self, spec: TrainSpec) -> tuple[Any, Any]:
        return _load(spec)

    def wrap(self, model: Any, spec: TrainSpec) -> Any:
        return _peft_model(model, spec)

    def train(self, spec: TrainSpec) -> TrainResult:
        import torch

        torch.manual_seed(spec.recipe.seed)
        model, tokenizer = self.load(spec)
        model = self.wrap(model, spec)
        train, evaluation = _datasets(spec)
        trainer = _trainer(spec, model, tokenizer, train, evaluation, [_callback(spec)])
        resume = str(spec.resume_from) if spec.resume_from else None
        output = trainer.train(resume_from_checkpoint=resume)
        stopped = trainer.state.global_step < trainer.state.max_steps
        metrics = {k: float(v) for k, v in output.metrics.items() if isinstance(v, int | float)}
        if evaluation is not None and not stopped:
            metrics.update({k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, int | float)})
        adapter_dir = spec.output_dir / "adapter"
        if not stopped and trainer.is_world_process_zero():  # once, by the first process
            trainer.model.save_pretrained(adapter_dir, safe_serialization=True)
            tokenizer.save_pretrained(adapter_dir)
            (adapter_dir / "trainer_state.json").write_text(json.dumps({"global_step": trainer.state.global_step}))
        return TrainResult(
            adapter_dir=adapter_dir, metrics=metrics, stopped_early=stopped, last_checkpoint=last_checkpoint(spec.output_dir)
        )
