"""LOSS registry."""

from fvcore.common.registry import Registry

LOSS_REGISTRY = Registry("LOSS")
LOSS_REGISTRY.__doc__ = "Loss functions, registered under their function names."
