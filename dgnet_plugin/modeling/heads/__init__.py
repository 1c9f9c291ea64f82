"""Re-ID heads: pooled feature -> (logits, embedding)."""

from .build import HEAD_REGISTRY, build_head
from .embedding import EmbeddingHead, global_pool

__all__ = ["HEAD_REGISTRY", "EmbeddingHead", "build_head", "global_pool"]
