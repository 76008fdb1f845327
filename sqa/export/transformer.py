"""Transformer encoder layers that trace with dynamic batch and sequence sizes.

``torch.onnx.export`` (TorchScript tracer) records ``nn.MultiheadAttention``'s key-padding-mask
path with the example's sequence length and batch size baked into its reshapes, so a graph traced
on one length fails on another. :func:`traceable_transformers` swaps, for the duration of an
export only, the ``forward`` of every ``nn.TransformerEncoderLayer`` inside a module for
:func:`encoder_layer_forward`: the same arithmetic from the same weights, written with reshapes
that keep the sizes symbolic. Eager outputs are never touched: the swap is undone on exit.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def self_attention(
    attention: nn.MultiheadAttention, frames: torch.Tensor, key_padding: torch.Tensor | None
) -> torch.Tensor:
    """Multi-head self-attention of a batch-first ``nn.MultiheadAttention`` (eval mode).

    Args:
        attention: The module whose packed in-projection and out-projection are used.
        frames: ``(B, T, E)``.
        key_padding: ``(B, T)`` True (or ``-inf``) on padded keys; ``None`` for none.

    Returns:
        ``(B, T, E)``.
    """
    batch, length, width = frames.shape[0], frames.shape[1], frames.shape[2]
    heads = attention.num_heads
    packed = F.linear(frames, attention.in_proj_weight, attention.in_proj_bias)
    query, key, value = (
        part.reshape(batch, length, heads, width // heads).transpose(1, 2)
        for part in packed.chunk(3, dim=-1)
    )
    scores = torch.matmul(query, key.transpose(-2, -1)) * (width // heads) ** -0.5
    if key_padding is not None:
        if key_padding.dtype == torch.bool:
            scores = scores.masked_fill(key_padding[:, None, None, :], float("-inf"))
        else:
            scores = scores + key_padding[:, None, None, :].to(scores.dtype)
    mixed = torch.matmul(torch.softmax(scores, dim=-1), value)
    mixed = mixed.transpose(1, 2).reshape(batch, length, width)
    return attention.out_proj(mixed)


def encoder_layer_forward(
    layer: nn.TransformerEncoderLayer,
    src: torch.Tensor,
    src_mask: torch.Tensor | None = None,
    src_key_padding_mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """``nn.TransformerEncoderLayer.forward`` in eval mode for batch-first layers without masks
    other than key padding (the only use in this project and in Distill-MOS)."""
    if src_mask is not None or is_causal or not layer.self_attn.batch_first:
        raise NotImplementedError("export supports batch-first layers with key padding only")

    def feed_forward(frames: torch.Tensor) -> torch.Tensor:
        return layer.linear2(layer.activation(layer.linear1(frames)))

    if layer.norm_first:
        src = src + self_attention(layer.self_attn, layer.norm1(src), src_key_padding_mask)
        return src + feed_forward(layer.norm2(src))
    src = layer.norm1(src + self_attention(layer.self_attn, src, src_key_padding_mask))
    return layer.norm2(src + feed_forward(src))


@contextlib.contextmanager
def traceable_transformers(module: nn.Module) -> Iterator[None]:
    """Within the block, every encoder layer of ``module`` runs :func:`encoder_layer_forward`.

    Also turns off PyTorch's fused attention fast path, which has no ONNX form.
    """
    layers = [item for item in module.modules() if isinstance(item, nn.TransformerEncoderLayer)]
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    for layer in layers:
        layer.forward = types.MethodType(encoder_layer_forward, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
        torch.backends.mha.set_fastpath_enabled(fast_path)
