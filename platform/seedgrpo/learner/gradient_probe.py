"""Per-response policy gradients, projected on shared random directions (the gradient-variance
diagnostic; the statistics are in ``seedgrpo.algorithms.diagnostics``).

What is measured, and why this way:

- **Per response, not per group.** A group's "gradient variance" is the spread of its
  responses' gradients g_i around their mean, so each g_i is needed on its own. g_i is the
  gradient of response i's term of the policy-gradient loss at pi_old (ratio 1: no clip, no
  KL), ``-A_i * sum_t log pi(y_t) / normaliser``, with the normaliser of the run's loss
  aggregation for one response (``dr_grpo``: the generation budget; ``token_mean``: the step's
  mean response length; ``seq_mean_token_mean``: the response's own length).
- **The unmodulated advantage.** A_i is the group's baseline advantage (``dr_grpo`` /
  ``grpo``) *before* the uncertainty factor: the factor is a function of the very uncertainty
  the measure is correlated with, and multiplying by it would make the correlation circular.
  A group whose rewards are all equal has every g_i = 0; it is left out (and counted).
- **A probe subset of the weights.** The last decoder layer and the final norm: every
  response's gradient reaches them, their size is a few percent of the model, and the
  backward pass stops there (the other weights are frozen for the forward pass, so no graph
  is kept below the probe layer). Full per-response gradients of a 1.5B model would be 6 GB
  each.
- **Random projections, generated chunk by chunk.** Each g_i is projected on K Gaussian
  directions z_k ~ N(0, I) (E[(z . v)^2] = ||v||^2, so the projections estimate squared
  distances without bias). The directions are never held whole: they are drawn chunk by chunk
  from generators seeded by (seed, parameter, chunk), so every rank draws the same ones (a
  group split across ranks is measured in one basis) and memory stays O(K) per response plus
  one chunk. The gradients of a block of responses are projected together, so the directions
  are drawn once per block, not once per response.
- **Beside DeepSpeed, not through it.** ``torch.autograd.grad`` with explicit inputs returns the
  gradients without accumulating them into ``.grad`` and without running DeepSpeed's gradient
  hooks (they sit on the accumulation nodes), so the engine's buffers, optimizer state and
  the next update are exactly what they would have been. ZeRO-1/2 ranks hold the full
  weights; ZeRO-3 partitions them, and the runtime refuses the diagnostic there
  (``runtime.trial.check_runtime_support``).

The model runs in eval mode (no dropout) and one response at a time: the backward pass of one
response through the output head costs its own tokens x vocabulary, whereas in a batch it
would cost the whole batch's for every response.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from seedgrpo.algorithms.losses import aggregate_loss
from seedgrpo.learner.batch import TrainSample, collate, token_logprobs

__all__ = ["probe_parameters", "RandomProjector", "response_gradient", "project_responses",
           "BLOCK_BYTES", "CHUNK_ELEMENTS"]

CHUNK_ELEMENTS = 1 << 24  # K x chunk floats of directions at once (64 MB in fp32)
BLOCK_BYTES = 1 << 29  # the gradients of a block of responses held at once (512 MB)
_SEED_MIX = (1_000_003, 7_919)


def probe_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The last decoder layer's and the final norm's parameters of a transformers causal LM."""
    decoder = model.get_decoder()
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        raise ValueError(f"{type(model).__name__}: no decoder `layers` list to take the probe "
                         "layer from; the gradient-variance diagnostic supports decoder-only "
                         "models with `model.layers` (Llama, Qwen, Mistral, SmolLM)")
    last = len(layers) - 1
    named = [(f"layers.{last}.{n}", p) for n, p in layers[last].named_parameters()]
    norm = getattr(decoder, "norm", None)
    if isinstance(norm, torch.nn.Module):
        named += [(f"norm.{n}", p) for n, p in norm.named_parameters()]
    return named


@contextlib.contextmanager
def only_these_require_grad(model: torch.nn.Module, params: Sequence[torch.nn.Parameter]
                            ) -> Iterator[None]:
    """Freeze every other parameter for the duration (restored after, even on an error): the
    forward pass then keeps no graph below the probe layer."""
    keep = {id(p) for p in params}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def response_gradient(model: torch.nn.Module, sample: TrainSample,
                      params: Sequence[torch.nn.Parameter], *, pad_id: int, aggregation: str,
                      max_response_len: int, mean_response_len: float, temperature: float,
                      share_prompts: bool = True) -> list[torch.Tensor]:
    """g_i: the gradient of one response's loss term with respect to ``params`` (see the module
    docstring for the normaliser); nothing is accumulated into ``.grad``."""
    device = params[0].device
    batch = collate([sample], pad_id).to(device)
    logp = token_logprobs(model, batch, temperature=temperature, share_prompts=share_prompts)
    per_token = -batch.advantages[:, None] * logp
    loss = aggregate_loss(per_token, batch.response_mask, aggregation,
                          num_tokens=mean_response_len, num_responses=1,
                          max_response_len=max_response_len)
    return list(torch.autograd.grad(loss, list(params), allow_unused=True, materialize_grads=True))


class RandomProjector:
    """K shared Gaussian directions over the probe parameters, drawn chunk by chunk.

    The directions depend only on ``seed``, the parameters' sizes and the chunk size: every
    rank, and every block of responses, sees the same ones.
    """

    def __init__(self, numels: Sequence[int], directions: int, seed: int, *,
                 chunk_elements: int = CHUNK_ELEMENTS) -> None:
        if directions < 1:
            raise ValueError(f"directions is {directions}; it must be >= 1")
        self.numels, self.directions, self.seed = list(numels), directions, seed
        self.chunk = max(1, chunk_elements // directions)

    def _generator(self, device: torch.device, param: int, chunk: int) -> torch.Generator:
        seed = (self.seed * _SEED_MIX[0] + param * _SEED_MIX[1] + chunk) % (2**63 - 1)
        return torch.Generator(device=device).manual_seed(seed)

    def project(self, block: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        """(b, K) projections of b responses' gradients (each a list over the parameters)."""
        if not block:
            return torch.zeros(0, self.directions)
        device = block[0][0].device
        out = torch.zeros(len(block), self.directions, dtype=torch.float64, device=device)
        for index, numel in enumerate(self.numels):
            flat = torch.stack([g[index].reshape(-1) for g in block]).float()  # (b, numel)
            if flat.shape[1] != numel:
                raise ValueError(f"parameter {index} has {flat.shape[1]} gradient entries, "
                                 f"not {numel}")
            for c, start in enumerate(range(0, numel, self.chunk)):
                width = min(self.chunk, numel - start)
                z = torch.randn(self.directions, width, generator=self._generator(
                    device, index, c), device=device)
                out += (flat[:, start:start + width] @ z.T).double()
        return out.cpu()


def project_responses(model: torch.nn.Module, samples: Sequence[TrainSample],
                      include: Sequence[bool], *, directions: int, seed: int, pad_id: int,
                      aggregation: str, max_response_len: int, mean_response_len: float,
                      temperature: float, share_prompts: bool = True,
                      block_bytes: int = BLOCK_BYTES) -> list[list[float] | None]:
    """Each sample's K projections, or None where ``include`` is False (a group with all-zero
    advantages). The caller puts the model in eval mode; its weights and ``.grad`` are left as
    they were."""
    if len(include) != len(samples):
        raise ValueError(f"{len(samples)} samples but {len(include)} include flags")
    named = probe_parameters(model)
    params = [p for _, p in named]
    projector = RandomProjector([p.numel() for p in params], directions, seed)
    per_response_bytes = 4 * sum(p.numel() for p in params)
    block_size = max(1, block_bytes // max(1, per_response_bytes))
    out: list[list[float] | None] = [None] * len(samples)
    wanted = [i for i, keep in enumerate(include) if keep]
    with only_these_require_grad(model, params):
        for start in range(0, len(wanted), block_size):
            indices = wanted[start:start + block_size]
            grads = [response_gradient(model, samples[i], params, pad_id=pad_id,
                                       aggregation=aggregation,
                                       max_response_len=max_response_len,
                                       mean_response_len=mean_response_len,
                                       temperature=temperature, share_prompts=share_prompts)
                     for i in indices]
            rows = projector.project(grads).tolist()
            del grads
            for i, row in zip(indices, rows, strict=True):
                out[i] = row
    return out
