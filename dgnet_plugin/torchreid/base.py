"""What the package's torchreid engines share: a ``torchreid.engine.Engine`` subclass whose
networks are registered with ``register_model``, whose checkpoints reload on torch >= 2.6,
and whose ``test()`` runs the method's own evaluation (``cfg.TEST``)."""

from __future__ import annotations

import os.path as osp

import torch

from ..config import ConfigError, get_cfg, load_cfg_file
from ..evaluation import evaluate_reid_model
from ..utils import torchreid_compat as tr

SAMPLER_HELP = (
    "build the ImageDataManager with train_sampler='RandomIdentitySampler' and "
    "num_instances >= 2 (batch_size_train a multiple of num_instances)"
)


def load_method_cfg(method: str, meta_architecture: str, config_file=None, opts=None):
    """The frozen config of a ``build_<method>`` builder: ``config_file`` (a path, or the name
    of a packaged config) or the method's defaults (``get_cfg(method)``), with the ``KEY
    VALUE`` ``opts``, and ``MODEL.HEADS.NUM_CLASSES`` 0 (the builder's ``num_classes``).

    Raises:
        ConfigError: its ``MODEL.META_ARCHITECTURE`` is not ``meta_architecture``, or a bad
            value.
    """
    if config_file:
        cfg = load_cfg_file(config_file, list(opts or []), freeze=False)
    else:
        cfg = get_cfg(method)
        cfg.merge_from_list(list(opts or []))
    if cfg.MODEL.META_ARCHITECTURE != meta_architecture:
        raise ConfigError(
            f"build_{method} needs a {meta_architecture} config (MODEL.META_ARCHITECTURE "
            f"{meta_architecture}), '{config_file}' has '{cfg.MODEL.META_ARCHITECTURE}'"
        )
    cfg.MODEL.HEADS.NUM_CLASSES = 0
    cfg.freeze()
    return cfg


def check_identity_sampler(datamanager, why: str) -> None:
    """Check that ``datamanager``'s training batches hold several images of each identity
    (torchreid's ``RandomIdentitySampler`` with ``num_instances >= 2``); ``why`` starts the
    error message (the method's reason).

    Raises:
        ConfigError: another sampler, or ``num_instances < 2``; names both settings.
    """
    sampler = getattr(datamanager.train_loader, "sampler", None)
    k = getattr(sampler, "num_instances", 0)
    if not isinstance(sampler, tr.RandomIdentitySampler) or k < 2:
        raise ConfigError(
            f"{why}, but the datamanager's training sampler is {type(sampler).__name__}"
            + (f" with num_instances={k}" if isinstance(sampler, tr.RandomIdentitySampler) else "")
            + f": {SAMPLER_HELP}"
        )


class ConfiguredEngine(tr.Engine):
    """Base of the package's torchreid engines (:class:`~.dgnet.ImageDGNetEngine`).

    ``cfg``: the method's config (``build_dgnet(...).cfg`` etc.). ``self.device`` is CUDA when
    ``use_gpu`` and CUDA is available, else CPU (torchreid's rule). Subclasses register
    their networks with :meth:`register_model` and implement :meth:`forward_backward`.

    Differences from torchreid's ``Engine`` (each to keep what the method's CLI does):

    - :meth:`save_model` stores ``rank1`` as a Python float, so torchreid's own
      ``resume_from_checkpoint`` / ``load_pretrained_weights`` read the files on torch >= 2.6
      (torchreid's numpy scalar is refused by ``weights_only`` loading), and accepts a network
      registered without a scheduler.
    - :meth:`_evaluate` (what ``test()`` calls per dataset) ranks with the method's test
      protocol, :func:`dgnet_plugin.evaluation.evaluate_reid_model` with ``cfg.TEST``: the
      test feature of ``self.model`` (per-part L2 normalisation, flip averaging
      ``TEST.FLIP``, query weighting ``TEST.ALPHA``), ``TEST.METRIC``, and the SYSU-MM01 /
      RegDB protocols for a visible-infrared test set. torchreid's ``rerank``, ``visrank``
      and ``use_metric_cuhk03`` switch ``TEST.RERANK``, ``TEST.VISRANK`` (pictures under
      ``save_dir/visrank/<dataset>``) and ``TEST.CUHK03_CLASSIC``; ``dist_metric`` and
      ``normalize_feature`` are replaced by ``TEST.METRIC`` and the per-part normalisation.
      The last results are kept in :attr:`last_results` (``{dataset: {Rank-1, ..., mAP}}``
      in %; a visible-infrared set: ``{"<dataset> <setting>": ...}``, e.g. ``"sysu_mm01
      all-search single-shot"``, whose first setting is printed and returned).
    """

    def query_transform(self, model):
        """The method's query-side feature function: the CLI engine's
        ``query_transform(cfg, model)`` (``ENGINE.NAME``'s class; DG-Net: ``TEST.ALPHA``)."""
        from ..engine import ENGINE_REGISTRY
        from ..utils.registry import lookup

        engine = lookup(ENGINE_REGISTRY, self.cfg.ENGINE.NAME, "ENGINE.NAME")
        return engine.query_transform(self.cfg, model)

    def __init__(self, datamanager, cfg, use_gpu: bool = True):
        super().__init__(datamanager, use_gpu)
        self.cfg = cfg
        self.device = torch.device("cuda" if self.use_gpu else "cpu")
        self.last_results: dict = {}
        self._per_iteration: list = []  # schedulers stepped every iteration (the CLI's)

    # ------------------------------------------------------------------ schedules
    def iteration(self) -> int:
        """Iterations done before the current batch (epochs x batches per epoch + batch)."""
        return self.epoch * self.num_batches + self.batch_idx

    def step_iteration_schedulers(self) -> None:
        """Step the per-iteration schedulers (the CLI's ``SOLVER.STEPS`` schedule), after
        each iteration, as the CLI's LR hook does."""
        for sched in self._per_iteration:
            sched.step()

    def update_lr(self, names=None):
        """torchreid's per-epoch step, for the schedulers the caller gave (the per-iteration
        ones built from ``SOLVER.STEPS`` are stepped by :meth:`step_iteration_schedulers`)."""
        for name in self.get_model_names(names):
            sched = self._scheds[name]
            if sched is not None and sched not in self._per_iteration:
                sched.step()

    # ------------------------------------------------------------------ checkpoints
    def save_model(self, epoch, rank1, save_dir, is_best=False):
        """torchreid's ``save_dir/<name>/model.pth.tar-<epoch+1>`` for every registered
        network (``state_dict, epoch, rank1, optimizer, scheduler``), with ``rank1`` a float
        and ``None`` for a missing optimiser or scheduler."""
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            tr.utils.save_checkpoint(
                {
                    "state_dict": self._models[name].state_dict(),
                    "epoch": epoch + 1,
                    "rank1": float(rank1),
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                },
                osp.join(save_dir, name),
                is_best=is_best,
            )

    # ------------------------------------------------------------------ evaluation
    def evaluation_model(self) -> torch.nn.Module:
        """The network whose test feature is evaluated (default ``self.model``)."""
        return self.model

    def test_loaders(self, dataset_name, query_loader, gallery_loader) -> dict:
        """``{query, gallery}`` (plus ``protocol`` for a visible-infrared set) of a test set."""
        return {"query": query_loader, "gallery": gallery_loader}

    @torch.no_grad()
    def _evaluate(
        self,
        dataset_name="",
        query_loader=None,
        gallery_loader=None,
        dist_metric="euclidean",
        normalize_feature=False,
        visrank=False,
        visrank_topk=10,
        save_dir="",
        use_metric_cuhk03=False,
        ranks=(1, 5, 10, 20),
        rerank=False,
    ):
        test_cfg = self.cfg.TEST.clone()
        test_cfg.defrost()
        test_cfg.RERANK = bool(rerank)
        test_cfg.VISRANK = bool(visrank)
        test_cfg.VISRANK_TOPK = int(visrank_topk)
        test_cfg.CUHK03_CLASSIC = bool(use_metric_cuhk03)
        model = self.evaluation_model()
        model.eval()
        sets = {dataset_name: self.test_loaders(dataset_name, query_loader, gallery_loader)}
        results = evaluate_reid_model(
            model, sets, self.device, test_cfg, save_dir or None, self.query_transform(model)
        )
        self.last_results.update(results)
        setting = dataset_name if dataset_name in results else next(iter(results))
        main = results[setting]
        print("** Results **" + ("" if setting == dataset_name else f" ({setting})"))
        print("mAP: {:.1%}".format(main["mAP"] / 100))
        print("CMC curve")
        for r in ranks:
            if f"Rank-{r}" in main:
                print("Rank-{:<3}: {:.1%}".format(r, main[f"Rank-{r}"] / 100))
        return main["Rank-1"] / 100, main["mAP"] / 100
