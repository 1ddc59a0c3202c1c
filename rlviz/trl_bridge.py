"""TRL 1.16.0's own ``GRPOTrainer`` on rlviz's toy task, on the CPU, with nothing downloaded.

* ``toy_tokenizer()``: a word-level ``PreTrainedTokenizerFast`` over the toy vocabulary
  (``rlviz.tasks.TOKEN_NAMES``: the symbols 0-9, ``<bos>``, ``|``, ``<eos>``, ``_`` for padding),
  built in code.
* ``toy_model(seed)``: a 2-layer Llama causal LM created from a config (random weights),
  saved to a local folder for TRL (which loads the policy and its reference from a path).
* ``toy_dataset(task, n, seed)``: a ``datasets.Dataset`` of prompts ``"<bos> 3 1 4 |"``.
* ``toy_reward(task)``: the task's reward as a TRL reward function.
* ``run_grpo(...)``: trains with ``trl.GRPOTrainer`` and keeps, for the first optimizer steps,
  the batch TRL computed its loss on, TRL's loss, and rlviz's loss recomputed on that batch
  (``rlviz_loss``) with the same model weights.

TRL 1.16.0 facts used here (``trl/trainer/grpo_trainer.py::_compute_loss``): the per-token loss is
``-min(rho A, clip(rho, 1 - epsilon, 1 + epsilon_high) A) + beta * k3`` with
``k3 = exp(ref - logp) - (ref - logp) - 1`` (no dual clip, no clamp), times rho when
``use_bias_correction_kl`` (default True in 1.16.0); ``old_per_token_logps`` is
``per_token_logps.detach()`` when ``num_iterations == 1`` and ``steps_per_generation <=
gradient_accumulation_steps`` (rho = 1 exactly); the aggregation per ``loss_type`` is
``"grpo"``: mean over sequences of the token mean; ``"bnpo"``: token mean of the micro-batch;
``"dr_grpo"``: token sum / (B * max_completion_length); ``"dapo"``: token sum /
(num_items_in_batch * gradient_accumulation_steps / steps_per_generation); each divided by the
gradient accumulation steps except ``"dapo"`` (already in its normaliser).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig, GRPOTrainer

from .losses import aggregate, clipped_surrogate, kl_estimate, selective_log_prob
from .tasks import BOS, EOS, NUM_SYMBOLS, PAD, SEP, TOKEN_NAMES, get_task

TRL_VERSION = "1.16.0"
LOSS_TYPE_AGG = {"grpo": "seq-mean-token-mean", "bnpo": "token-mean",
                 "dr_grpo": "seq-mean-token-sum-norm", "dapo": "token-mean"}


def toy_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer: one token per space-separated toy symbol, ids as in rlviz.tasks."""
    vocab = {name: i for i, name in enumerate(TOKEN_NAMES)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=TOKEN_NAMES[PAD]))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=TOKEN_NAMES[BOS], eos_token=TOKEN_NAMES[EOS],
        pad_token=TOKEN_NAMES[PAD], unk_token=TOKEN_NAMES[PAD], padding_side="left")


def toy_model(seed: int = 0, hidden: int = 32, layers: int = 2) -> LlamaForCausalLM:
    """A tiny Llama (about 30k parameters) with random weights, seeded."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(TOKEN_NAMES), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=32, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
        tie_word_embeddings=True)
    return LlamaForCausalLM(config)


def prompt_text(symbols) -> str:
    return " ".join([TOKEN_NAMES[BOS], *(str(s) for s in symbols), TOKEN_NAMES[SEP]])


def toy_dataset(task: str = "copy", n: int = 64, seed: int = 0) -> Dataset:
    """``n`` prompts of the task as text, with their symbols in a ``symbols`` column."""
    generator = torch.Generator().manual_seed(seed)
    prompts = get_task(task).sample_prompts(n, generator)
    return Dataset.from_dict({"prompt": [prompt_text(p) for p in prompts], "symbols": prompts})


def completion_symbols(text: str) -> list[int]:
    """The answer's symbols from a decoded completion (special tokens already stripped);
    a token that is not a digit (e.g. ``|``) stands as -1, a wrong symbol."""
    return [int(t) if t.isdigit() and int(t) < NUM_SYMBOLS else -1 for t in text.split()]


def toy_reward(task: str = "copy"):
    """The task's positional reward as a TRL reward function (``symbols`` comes from the
    dataset column of that name, which TRL passes as a keyword argument)."""
    rule = get_task(task)

    def reward(prompts, completions, symbols, **kwargs) -> list[float]:
        return [rule.reward(p, completion_symbols(c)) for p, c in zip(symbols, completions)]

    reward.__name__ = f"toy_{task}"
    return reward


def grpo_config(output_dir: str, **overrides) -> GRPOConfig:
    """A GRPOConfig for a seconds-long CPU run; ``overrides`` are GRPOConfig keywords."""
    settings = dict(
        output_dir=output_dir, use_cpu=True, seed=0, data_seed=0, max_steps=4,
        per_device_train_batch_size=8, num_generations=4, max_completion_length=8,
        learning_rate=3e-3, logging_steps=1, report_to="none", save_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0, temperature=1.0, beta=0.0,
        loss_type="grpo", bf16=False, fp16=False,
    )
    settings.update(overrides)
    return GRPOConfig(**settings)


@torch.no_grad()
def rlviz_loss(model, inputs: dict, args: GRPOConfig, loss_type: str,
               grad_accum: int) -> torch.Tensor:
    """TRL's loss for one micro-batch, recomputed with rlviz's blocks on TRL's batch."""
    prompt_ids, completion_ids = inputs["prompt_ids"], inputs["completion_ids"]  # (B, P), (B, C)
    mask = inputs["completion_mask"].to(torch.float32)  # (B, C)
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)  # (B, P + C)
    attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    logits = model(input_ids=input_ids, attention_mask=attention).logits.float()  # (B, P+C, V)
    width = completion_ids.shape[1]
    logits = logits[:, -width - 1:-1] / args.temperature  # (B, C, V): position t predicts t+1
    logp = selective_log_prob(logits, completion_ids)  # (B, C)
    old = inputs.get("old_per_token_logps")
    old = logp if old is None else old.float()  # (B, C)
    adv = inputs["advantages"].float()  # (B,)
    per_token = clipped_surrogate(logp, old, adv, args.epsilon, args.epsilon_high,
                                  dual_clip=None, mask=mask)  # (B, C)
    if args.beta != 0.0:
        kl = kl_estimate(logp, inputs["ref_per_token_logps"].float(), "k3")  # (B, C)
        if args.use_bias_correction_kl:  # TRL 1.16.0 default True: k3 * rho
            kl = kl * torch.exp(logp - old)  # (B, C)
        per_token = per_token + args.beta * kl
    if loss_type == "dapo":
        normalizer = inputs["num_items_in_batch"].float() * grad_accum / args.steps_per_generation
        return aggregate(per_token, mask, "token-mean") * mask.sum() / normalizer
    agg = aggregate(per_token, mask, LOSS_TYPE_AGG[loss_type],
                    max_len=args.max_completion_length)
    return agg / grad_accum


class _CapturingTrainer(GRPOTrainer):
    """GRPOTrainer that keeps TRL's loss and rlviz's recomputation for the first calls."""

    capture_limit = 4

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if len(self.captured) < self.capture_limit:
            ours = rlviz_loss(model, inputs, self.args, self.loss_type,
                              self.current_gradient_accumulation_steps)
            kept = {k: v.detach().clone() for k, v in inputs.items() if torch.is_tensor(v)}
            self.captured.append(Captured(kept, float(loss.detach()), float(ours)))
        return loss


@dataclass
class Captured:
    inputs: dict
    trl_loss: float  # what TRL's compute_loss returned (divided by the accumulation steps)
    rlviz_loss: float


@dataclass
class TrlRun:
    log_history: list[dict]
    captured: list[Captured]
    state_path: str
    args: GRPOConfig
    trainer: GRPOTrainer = field(repr=False)

    def series(self, key: str) -> list[tuple[int, float]]:
        return [(row["step"], row[key]) for row in self.log_history if key in row]


def run_grpo(task: str = "copy", seed: int = 0, output_dir: str | None = None,
             num_prompts: int = 64, **overrides) -> TrlRun:
    """Train the toy Llama with TRL's GRPOTrainer; ``overrides`` are GRPOConfig keywords.

    Writes ``trainer_state.json`` (the log ``rlviz diagnose`` reads) into ``output_dir``.
    """
    output_dir = output_dir or tempfile.mkdtemp(prefix="rlviz_trl_")
    args = grpo_config(output_dir, seed=seed, data_seed=seed, **overrides)
    # TRL 1.16.0 builds its reference model (beta != 0) from the policy's path
    # (create_model_from_path(get_config_model_id(model.config))), so the toy model is saved
    # to a local folder first and passed by path.
    model_dir = f"{output_dir}/toy_model"
    toy_model(seed).save_pretrained(model_dir)
    trainer = _CapturingTrainer(
        model=model_dir, reward_funcs=toy_reward(task), args=args,
        train_dataset=toy_dataset(task, num_prompts, seed), processing_class=toy_tokenizer())
    trainer.captured = []
    trainer.train()
    state_path = f"{output_dir}/trainer_state.json"
    trainer.state.save_to_json(state_path)
    return TrlRun(trainer.state.log_history, trainer.captured, state_path, args, trainer)
