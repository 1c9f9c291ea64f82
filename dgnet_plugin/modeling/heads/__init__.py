"""Re-ID heads: pooled feature -> (logits, embedding)."""

from .build import HEAD_REGISTRY, build_head
from .embedding import BNNeckHead, EmbeddingHead, gem_pool, global_pool

__all__ = [
    "HEAD_REGISTRY",
    "BNNeckHead",
    "EmbeddingHead",
    "build_head",
    "gem_pool",
    "global_pool",
]
