"""Rollouts: sample G responses per prompt, score them, and keep what the update needs.

For each prompt the current policy samples ``group_size`` responses (rows
``g*G .. g*G+G-1`` answer prompt g, the layout ``rlviz.group_advantages`` expects).
At sampling time we record, per response token,

* ``old_logp``:   log pi_old(token | context), the sampler's own log-prob at the sampling
                  temperature (the denominator of the importance ratio rho),
* ``old_values``: the value head's V(state before the token) (used by ``"ppo_gae"``),

then score the batch once with the frozen reference (``ref_logp``, same temperature) and
with the task's reward function. The response mask is 1 on every generated token up to and
including the first EOS (the end token is an action too: its log-prob gets the gradient
that teaches the policy to stop), 0 on the PAD after it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from .causal_policy import CausalPolicy, rows_share_prompts
from .masks import mask_from_lengths
from .tasks import EOS, PAD, Task


@dataclass
class Rollout:
    """A batch of sampled responses. B = number of prompts x group_size, P = prompt width,
    R = generation budget (``task.max_new_tokens``).

    ==================  ============  ===============================================
    prompts             list of B     the prompt symbols of each row (repeated G times)
    sequences           (B, P + R)    left-padded prompt block, then the response
    attention_mask      (B, P + R)    1 on real tokens (prompt padding is 0)
    responses           (B, R)        response tokens: symbols, EOS, then PAD
    response_mask       (B, R)        1 up to and including the first EOS
    lengths             (B,)          response lengths, EOS included
    old_logp            (B, R)        sampler's log-probs (temperature applied), 0 on padding
    ref_logp            (B, R)        reference model's log-probs of the same tokens
    old_values          (B, R)        value head at sampling time, V(state before token)
    rewards             (B,)          task reward in [0, 1]
    ==================  ============  ===============================================
    """

    prompts: list
    sequences: torch.Tensor
    attention_mask: torch.Tensor
    responses: torch.Tensor
    response_mask: torch.Tensor
    lengths: torch.Tensor
    old_logp: torch.Tensor
    ref_logp: torch.Tensor
    old_values: torch.Tensor
    rewards: torch.Tensor
    prompt_width: int
    group_size: int
    temperature: float

    def __len__(self) -> int:
        return self.sequences.shape[0]

    def select(self, rows: torch.Tensor) -> Rollout:
        """The rows ``rows`` (a 1-D index tensor) as a new ``Rollout`` (for minibatches)."""
        picked = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                picked[f.name] = value[rows]
            elif isinstance(value, list):
                picked[f.name] = [value[i] for i in rows.tolist()]
            else:
                picked[f.name] = value
        return Rollout(**picked)

    @staticmethod
    def concat(parts: list[Rollout]) -> Rollout:
        """The rows of several rollouts of the same task and settings, in order."""
        joined = {}
        for f in fields(Rollout):
            values = [getattr(part, f.name) for part in parts]
            if isinstance(values[0], torch.Tensor):
                joined[f.name] = torch.cat(values, dim=0)  # (sum of B, ...)
            elif isinstance(values[0], list):
                joined[f.name] = [item for value in values for item in value]
            elif any(value != values[0] for value in values):
                raise ValueError(f"parts: {f.name} differs between the rollouts: {values}")
            else:
                joined[f.name] = values[0]
        return Rollout(**joined)

    def trimmed(self, keep_prompt: bool = False) -> Rollout:
        """The same rows without the columns that are padding in every row: the leading
        prompt padding and the response positions after the longest response.

        What a scored token sees does not change (padding is masked and positions count
        real tokens only), the model just runs on fewer positions: ~20% less work once
        responses are short. Per-token tensors become (B, R') with R' = ``lengths.max()``.
        ``keep_prompt=True`` keeps the prompt block whole, for a policy whose positions
        are column indices (``CausalPolicy(positions="column")``).
        """
        width = self.prompt_width
        first = 0 if keep_prompt else int(self.attention_mask[:, :width].argmax(dim=1).min())
        longest = int(self.lengths.max())
        picked = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("sequences", "attention_mask"):
            picked[name] = picked[name][:, first:width + longest]
        for name in ("responses", "response_mask", "old_logp", "ref_logp", "old_values"):
            picked[name] = picked[name][:, :longest]
        picked["prompt_width"] = width - first
        return Rollout(**picked)


def response_lengths(responses: torch.Tensor) -> torch.Tensor:
    """(B, R) tokens -> (B,) lengths up to and including the first EOS (R if none)."""
    budget = responses.shape[1]
    is_eos = responses == EOS  # (B, R)
    first_eos = torch.where(is_eos.any(dim=1), is_eos.float().argmax(dim=1),
                            torch.full_like(responses[:, 0], budget))  # (B,)
    return (first_eos + 1).clamp_max(budget)  # (B,)


@torch.no_grad()
def generate(policy: CausalPolicy, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
             max_new_tokens: int, temperature: float = 1.0,
             generator: torch.Generator | None = None, greedy: bool = False,
             top_p: float = 1.0, top_k: int = 0, group_size: int = 1):
    """Batched sampling with a key/value cache.

    prompt_ids, prompt_mask (B, P) (left-padded). At each step the next token is drawn
    from softmax(logits / temperature) (or the argmax with ``greedy=True``); a row that
    has produced EOS gets PAD afterwards. Returns ``(responses, logp, values)``, each
    (B, R): the tokens, their log-probs under the sampling distribution (0 after EOS)
    and the value head's V(state before each token).

    ``top_p < 1`` / ``top_k > 0`` truncate the sampler (``truncate_log_probs``): the
    log-probs returned are those of the truncated, renormalised distribution actually
    sampled from (vLLM's ``processed_logprobs``, which TRL 1.16.0 and verl 0.9.1 request).
    Logits are read in float32 whatever the model's dtype (a bf16 model's logits are
    rounded to bf16 first, as a bf16 inference engine's are).

    ``group_size`` G > 1 says rows g*G .. g*G+G-1 share one prompt (a GRPO group): each
    prompt is then run once (``CausalPolicy.prefill_groups``), the same numbers for 1/G of
    the prompt work.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be an int >= 0 (0: off), got {top_k!r}")
    batch = prompt_ids.shape[0]
    if group_size > 1 and rows_share_prompts(prompt_ids, prompt_mask, group_size):
        next_logits, next_value, cache = policy.prefill_groups(
            prompt_ids, prompt_mask, group_size)  # (B, V), (B,)
    else:
        logits, values, cache = policy.prefill(prompt_ids, prompt_mask)
        next_logits, next_value = logits[:, -1], values[:, -1]  # (B, V), (B,)
    key_mask = prompt_mask.bool()  # (B, P), grows by one column per step
    position = policy.first_response_position(prompt_mask)  # (B,) position of the next token

    responses = torch.full((batch, max_new_tokens), PAD, dtype=torch.long)  # (B, R)
    logp = torch.zeros(batch, max_new_tokens)  # (B, R)
    old_values = torch.zeros(batch, max_new_tokens)  # (B, R)
    finished = torch.zeros(batch, dtype=torch.bool)  # (B,)
    for t in range(max_new_tokens):
        logprobs = torch.log_softmax(next_logits.float() / temperature, dim=-1)  # (B, V)
        if top_p < 1 or top_k > 0:
            logprobs = truncate_log_probs(logprobs, top_p, top_k)  # (B, V), -inf outside
        if greedy:
            token = logprobs.argmax(dim=-1)  # (B,)
        else:
            token = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, PAD), token)  # (B,)
        responses[:, t] = token
        token_logp = logprobs.gather(1, token[:, None]).squeeze(1)  # (B,)
        logp[:, t] = torch.where(finished, torch.zeros_like(token_logp), token_logp)
        old_values[:, t] = torch.where(finished, torch.zeros_like(next_value), next_value)
        finished = finished | (token == EOS)
        if t == max_new_tokens - 1 or bool(finished.all()):
            break
        key_mask = torch.cat([key_mask, torch.ones(batch, 1, dtype=torch.bool)], dim=1)
        next_logits, next_value, cache = policy.step(token, position, key_mask, cache)
        position = position + 1
    return responses, logp, old_values


def truncate_log_probs(logprobs: torch.Tensor, top_p: float = 1.0, top_k: int = 0):
    """Top-k then top-p (nucleus) truncation of (B, V) log-probs, renormalised.

    top-k keeps the k most likely tokens; top-p keeps the smallest set of most likely
    tokens whose probability reaches ``top_p`` (the token that crosses it included, the
    most likely token always). The others get -inf; the kept ones log p - log Z with Z
    the kept mass, so a kept token is more likely than under the full softmax.
    """
    order = logprobs.argsort(dim=-1, descending=True)  # (B, V)
    sorted_logp = logprobs.gather(-1, order)  # (B, V)
    keep_sorted = torch.ones_like(sorted_logp, dtype=torch.bool)  # (B, V)
    if top_k > 0:
        keep_sorted[:, top_k:] = False
    if top_p < 1:
        mass_before = sorted_logp.exp().cumsum(dim=-1) - sorted_logp.exp()  # (B, V)
        keep_sorted &= mass_before < top_p
    keep_sorted[:, 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # (B, V)
    kept = torch.where(keep, logprobs, torch.full_like(logprobs, float("-inf")))
    return kept - kept.logsumexp(dim=-1, keepdim=True)  # (B, V)


def build_sequences(prompt_ids, prompt_mask, responses):
    """Prompt block + responses -> ``(sequences, attention_mask)``, both (B, P + R).

    Response positions are all marked real (a PAD after EOS is never read by a scored
    token, because attention is causal)."""
    sequences = torch.cat([prompt_ids, responses], dim=1)  # (B, P + R)
    attention_mask = torch.cat([prompt_mask, torch.ones_like(responses)], dim=1)  # (B, P + R)
    return sequences, attention_mask


@torch.no_grad()
def collect_rollout(policy: CausalPolicy, reference: CausalPolicy, task: Task,
                    num_prompts: int, group_size: int, temperature: float = 1.0,
                    generator: torch.Generator | None = None,
                    prompts: list | None = None, top_p: float = 1.0,
                    top_k: int = 0) -> Rollout:
    """Sample ``group_size`` responses to each of ``num_prompts`` fresh prompts (or to the
    given ``prompts``), and score them with the reference and the task's reward.
    ``top_p`` / ``top_k``: a truncated sampler (``generate``)."""
    if prompts is None:
        prompts = task.sample_prompts(num_prompts, generator)
    rows = [p for p in prompts for _ in range(group_size)]  # prompt g on rows g*G .. g*G+G-1
    prompt_ids, prompt_mask = task.encode_prompts(rows)  # (B, P)
    responses, old_logp, old_values = generate(
        policy, prompt_ids, prompt_mask, task.max_new_tokens, temperature, generator,
        top_p=top_p, top_k=top_k, group_size=group_size)
    lengths = response_lengths(responses)  # (B,)
    response_mask = mask_from_lengths(lengths, task.max_new_tokens)  # (B, R), EOS included
    sequences, attention_mask = build_sequences(prompt_ids, prompt_mask, responses)
    ref_logp, _, _ = reference.response_scores(
        sequences, attention_mask, task.prompt_width, temperature, group_size)  # (B, R)
    ref_logp = ref_logp * response_mask
    return Rollout(
        prompts=rows,
        sequences=sequences,
        attention_mask=attention_mask,
        responses=responses,
        response_mask=response_mask,
        lengths=lengths,
        old_logp=old_logp,
        ref_logp=ref_logp,
        old_values=old_values,
        rewards=task.score(rows, responses),
        prompt_width=task.prompt_width,
        group_size=group_size,
        temperature=temperature,
    )


@torch.no_grad()
def evaluate(policy: CausalPolicy, task: Task, num_prompts: int, generator: torch.Generator,
             greedy: bool = True, temperature: float = 1.0) -> float:
    """Mean reward on ``num_prompts`` fresh prompts, greedy decoding by default."""
    prompts = task.sample_prompts(num_prompts, generator)
    prompt_ids, prompt_mask = task.encode_prompts(prompts)
    responses, _, _ = generate(policy, prompt_ids, prompt_mask, task.max_new_tokens,
                               temperature, generator, greedy=greedy)
    return float(task.score(prompts, responses).mean())
