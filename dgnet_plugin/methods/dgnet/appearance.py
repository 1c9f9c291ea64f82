"""DG-Net's appearance encoder ``Ea``, which is also its re-ID model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...modeling.backbones import build_backbone
from ...modeling.heads import build_head, global_pool

#: ``MODEL.EA_BN_INIT`` values
EA_BN_INITS = ("ones", "normal")


class AppearanceEncoder(nn.Module):
    """``Ea`` of DG-Net, which is also the re-ID model (paper section 3.1, ``ft_netAB``).

    Input: ImageNet-normalised ``(N, 3, H, W)``. The backbone map ``(N, C, h, w)`` is
    max-pooled into ``num_parts`` horizontal stripes, flattened channel-major into the
    appearance code ``(N, C * num_parts)`` (8192-d for ResNet-50), and max-pooled globally
    into ``(N, C)`` for two heads: primary (dropout 0.5) and fine-grained (dropout 0.75), each
    giving a 512-d embedding and identity logits.

    ``forward`` follows torchreid's contract: in training, the list ``[logits_prim,
    logits_fine]`` (torchreid's ``DeepSupervision`` averages their losses); in eval, the
    ``(N, 1024)`` feature ``[l2norm(emb_prim), l2norm(emb_fine)]``. ``return_all=True`` gives
    the dict ``{code, logits, emb}`` used by the DG-Net engine. ``feature_parts`` tells the
    evaluator the two halves, L2-normalised separately, the query's fine half weighted by
    ``TEST.ALPHA`` (:func:`combine_query_features`).

    ``bn_init`` (``MODEL.EA_BN_INIT``): the heads' BatchNorm1d weight: ``"ones"`` (the official
    ``ClassBlock``: its ``weights_init_kaiming`` matches ``InstanceNorm1d`` only, so the
    BatchNorm1d keeps torch's 1; NVlabs/DG-Net ``reIDmodel.py``) or ``"normal"`` (N(1, 0.02),
    the head's own init, from Person_reID_baseline_pytorch, which DG-Net's teacher uses).

    Raises:
        ValueError: another ``bn_init``.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        embed_dim=512,
        num_parts=4,
        pool="max",
        dropout=0.5,
        fine_dropout=0.75,
        head="EmbeddingHead",
        bn_init="ones",
    ):
        super().__init__()
        if bn_init not in EA_BN_INITS:
            raise ValueError(f"MODEL.EA_BN_INIT '{bn_init}': one of {', '.join(EA_BN_INITS)}")
        self.backbone = backbone
        c = backbone.out_channels
        self.num_parts = num_parts
        self.pool = pool
        self.code_dim = c * num_parts
        self.num_classes = num_classes
        self.classifier = build_head(head, c, num_classes, embed_dim, dropout)
        self.classifier_fine = build_head(head, c, num_classes, embed_dim, fine_dropout)
        self.feature_parts = (embed_dim, embed_dim)
        if bn_init == "ones":
            for m in (*self.classifier.modules(), *self.classifier_fine.modules()):
                if isinstance(m, nn.BatchNorm1d):
                    nn.init.ones_(m.weight)

    def forward(self, x: torch.Tensor, return_all: bool = False):
        fmap = self.backbone(x)
        g = global_pool(fmap, self.pool)
        logits_p, emb_p = self.classifier(g)
        logits_f, emb_f = self.classifier_fine(g)
        if return_all:
            code = F.adaptive_max_pool2d(fmap, (self.num_parts, 1)).flatten(1)
            return {"code": code, "logits": (logits_p, logits_f), "emb": (emb_p, emb_f)}
        if self.training:
            return [logits_p, logits_f]
        return torch.cat([F.normalize(emb_p, dim=1), F.normalize(emb_f, dim=1)], dim=1)


def build_appearance_encoder(cfg, num_classes: int) -> AppearanceEncoder:
    h = cfg.MODEL.HEADS
    return AppearanceEncoder(
        build_backbone(cfg),
        num_classes,
        h.EMBEDDING_DIM,
        h.NUM_PARTS,
        h.POOL,
        h.DROPOUT,
        h.FINE_DROPOUT,
        h.NAME,
        cfg.MODEL.EA_BN_INIT,
    )


def combine_query_features(q: torch.Tensor, parts: tuple[int, ...], alpha: float) -> torch.Tensor:
    """Query-side weighting of DG-Net: ``[f_prim, alpha * f_fine]`` (official ``alpha``).

    Weighting the query only makes the similarity ``f_prim.g_prim + alpha f_fine.g_fine``
    (weighting both sides would give alpha^2). ``alpha = -1`` keeps the fine-grained half
    only; models with one part are returned unchanged.
    """
    if len(parts) < 2:
        return q
    prim, fine = q.split([parts[0], sum(parts[1:])], dim=1)
    if alpha == -1:
        return torch.cat([torch.zeros_like(prim), fine], dim=1)
    if alpha < 0:
        raise ValueError(f"TEST.ALPHA must be >= 0 or exactly -1 (fine half only), got {alpha}")
    return torch.cat([prim, alpha * fine], dim=1)
