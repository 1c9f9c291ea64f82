"""HEAD registry."""

from __future__ import annotations

from fvcore.common.registry import Registry

from ...utils.registry import lookup

HEAD_REGISTRY = Registry("HEAD")
HEAD_REGISTRY.__doc__ = """
Re-ID heads, built as ``cls(in_dim, num_classes, embed_dim, dropout)``; ``forward(x)`` with
``x`` of shape ``(N, in_dim)`` returns ``(logits (N, num_classes), embedding (N, embed_dim))``.
"""


def build_head(name: str, in_dim: int, num_classes: int, embed_dim: int, dropout: float, **options):
    """The head ``name`` (``MODEL.HEADS.NAME``); ``options`` (e.g. ``neck_relu``) go to heads
    that take them."""
    head = lookup(HEAD_REGISTRY, name, "MODEL.HEADS.NAME")
    return head(in_dim, num_classes, embed_dim, dropout, **options)
