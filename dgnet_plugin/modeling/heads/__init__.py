"""Re-ID heads: pooled feature -> (logits, embedding)."""

from .class_block import HEAD_REGISTRY, ClassBlock, build_head

__all__ = ["HEAD_REGISTRY", "ClassBlock", "build_head"]
