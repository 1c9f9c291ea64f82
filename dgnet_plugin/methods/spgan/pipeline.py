"""SPGAN's stages: (the demo's ``domains`` split), the translator ``gan``, every source
training image translated to the target style (``generate``), the direct-transfer
``baseline``, then :class:`~.engine.SPGANEngine` (:func:`~dgnet_plugin.offline_augmentation.engine.
cross_domain_stages`)."""

from __future__ import annotations

from ...offline_augmentation.engine import cross_domain_stages


def spgan_stages(cfg) -> list:
    return cross_domain_stages(cfg, "SPGANTranslatorEngine", "SPGAN", "SPGAN source->target")
