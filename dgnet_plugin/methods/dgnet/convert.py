"""Convert the official NVlabs DG-Net release into dgnet_plugin state dicts.

The official code (``NVlabs/DG-Net``, CC BY-NC-SA, not copied here) saves three files per
snapshot, each ``{'a': state_dict}``: ``gen_XXXXXXXX.pt`` (``AdaINGen``: ``enc_content``,
``dec``, ``mlp_w1..4``, ``mlp_b1..4``), ``id_XXXXXXXX.pt`` (``ft_netAB``: torchvision
ResNet-50 under ``model.``, heads ``classifier1`` / ``classifier2``) and ``dis_XXXXXXXX.pt``
(``MsImageDis``: ``cnns.<scale>.<layer>``). Its teacher ``models/best/net_last.pth`` is a bare
``ft_net`` state dict (``model.`` + ``classifier``). Layouts: ``../shared/reference/dgnet.md``
sections 1 and 5.

Keys are mapped by module path and, inside ``nn.Sequential`` containers, by the order of the
layers that hold tensors (so an extra non-local block shifting the indices is harmless). Every
tensor is shape-checked against the dgnet_plugin model built from a config (on the ``meta``
device: no memory, no ImageNet download). Tensors the official layout has and dgnet_plugin does
not (AdaIN's dummy running buffers, non-local blocks of the release, the backbone's ImageNet
``fc``) are dropped and listed in the :class:`ConversionReport`; a tensor dgnet_plugin needs
that the official files lack is an error, except BatchNorm's ``num_batches_tracked`` counters
(absent from checkpoints older than PyTorch 0.4.1), which are filled with 0 and reported.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ...config import get_cfg

Tensor = torch.Tensor

# official module -> ours (ClassBlock heads of ft_netAB / ft_net)
_ID_HEADS = {"classifier1": "classifier", "classifier2": "classifier_fine"}
_CLASSBLOCK_LEAVES = {"add_block.0.": "bottleneck.0.", "add_block.1.": "bottleneck.1."}

_CONV_BLOCK_LEAVES = {"conv.weight", "conv.bias", "norm.gamma", "norm.beta"}
_ADAIN_BUFFERS = {"norm.running_mean", "norm.running_var"}

REASON_ADAIN = "AdaIN dummy running buffer (AdaIN uses instance statistics; never read)"
REASON_NONLOCAL = "non-local block of the release (not in the paper's model nor in dgnet_plugin)"
REASON_FC = "ImageNet fc of the ResNet-50 backbone (unused by the re-ID model)"
REASON_NBT = "BatchNorm num_batches_tracked absent from the official file: filled with 0"


@dataclass
class ConversionReport:
    """What a conversion did.

    ``mapped``: ``(source, official key, our key)``; ``dropped``: ``(source, official key,
    reason)``; ``filled``: ``(our key, reason)``. ``source`` names the official file
    (``gen``, ``id``, ``dis`` or ``teacher``).
    """

    mapped: list[tuple[str, str, str]] = field(default_factory=list)
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    filled: list[tuple[str, str]] = field(default_factory=list)

    def dropped_groups(self) -> list[tuple[str, int, str]]:
        """Dropped keys grouped by ``source: module prefix`` (layer indices and the tensors of
        one dropped module replaced by ``*``): ``[(pattern, count, reason)]``, first-seen order.
        """
        counts: Counter[str] = Counter()
        reasons: dict[str, str] = {}
        for source, key, reason in self.dropped:
            pattern = f"{source}: {_index_pattern(_drop_prefix(key))}"
            counts[pattern] += 1
            reasons.setdefault(pattern, reason)
        return [(p, counts[p], reasons[p]) for p in reasons]

    def format(self) -> str:
        """Human-readable summary: counts, dropped keys grouped by prefix, filled keys."""
        lines = [
            f"mapped {len(self.mapped)} tensors, dropped {len(self.dropped)}, "
            f"filled {len(self.filled)}"
        ]
        if self.dropped:
            lines.append("dropped (official keys dgnet_plugin has no use for):")
            for pattern, count, reason in self.dropped_groups():
                lines.append(f"  {pattern}  x{count}  ({reason})")
        if self.filled:
            lines.append("filled (not in the official files):")
            counts = Counter(_index_pattern(k) for k, _ in self.filled)
            reasons = dict((_index_pattern(k), r) for k, r in self.filled)
            for pattern, count in counts.items():
                lines.append(f"  {pattern}  x{count}  ({reasons[pattern]})")
        return "\n".join(lines)

    def merge(self, other: ConversionReport) -> ConversionReport:
        self.mapped += other.mapped
        self.dropped += other.dropped
        self.filled += other.filled
        return self


def _drop_prefix(key: str) -> str:
    """The module a dropped tensor belongs to, as ``prefix.*``."""
    for pattern in (r"\.nonloc\..*$", r"\.(query_conv|key_conv|value_conv)\..*$", r"\.gamma$"):
        if re.search(pattern, key):
            return re.sub(pattern, "", key, count=1) + (
                ".nonloc.*" if "nonloc" in pattern else ".*"
            )
    if re.search(r"\.norm\.running_(mean|var)$", key):
        return re.sub(r"running_(mean|var)$", "running_*", key)
    if key.startswith("model.fc."):
        return "model.fc.*"
    return key


def _index_pattern(key: str) -> str:
    return re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "*", key)


# --------------------------------------------------------------------------- loading helpers
def unwrap_official_state_dict(obj, name: str = "checkpoint") -> dict[str, Tensor]:
    """``{'a': state_dict}`` (official gen / id / dis files) or a bare state dict (teacher)
    -> a plain ``{key: tensor}`` dict, without a DataParallel ``module.`` prefix.

    Raises ``ValueError`` naming ``name`` when ``obj`` is neither.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get("a"), Mapping):
        obj = obj["a"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{name}: expected {{'a': state_dict}} or a state dict, got {type(obj)}")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(
            f"{name}: expected {{'a': state_dict}} or a state dict of tensors, but entries "
            f"{bad[:5]} are not tensors (top-level keys: {list(obj)[:8]})"
        )
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def infer_num_classes(id_sd: Mapping[str, Tensor], name: str = "id") -> int:
    """Number of identities of an official ``ft_netAB`` / ``ft_net`` state dict (rows of its
    primary classifier)."""
    for key in ("classifier1.classifier.0.weight", "classifier.classifier.0.weight"):
        if key in id_sd:
            return int(id_sd[key].shape[0])
    raise ValueError(
        f"{name}: no 'classifier1.classifier.0.weight' or 'classifier.classifier.0.weight'; "
        "is this an official ft_netAB (id_XXXXXXXX.pt) or ft_net (net_last.pth) state dict?"
    )


# --------------------------------------------------------------------------- target models
def default_dgnet_cfg():
    """The package defaults: the official Market-1501 DG-Net (ResNet-50, last stride 1,
    max pooling, 4 stripes, 16-wide generator, 3-scale discriminator)."""
    cfg = get_cfg("dgnet")
    cfg.ENGINE.NAME = "DGNetEngine"
    cfg.MODEL.META_ARCHITECTURE = "DGNet"
    cfg.MODEL.BACKBONE.PRETRAIN = False
    return cfg


def official_teacher_cfg(last_stride: int = 2):
    """Config of the official teacher: ``IDEBaseline`` with ResNet-50, average pooling and
    the ``stride`` of its ``opts.yaml`` (default 2), trained by ``IDEEngine``."""
    cfg = get_cfg("ide")
    cfg.ENGINE.NAME = "IDEEngine"
    cfg.MODEL.META_ARCHITECTURE = "IDEBaseline"
    cfg.MODEL.BACKBONE.NAME = "resnet50"
    cfg.MODEL.BACKBONE.LAST_STRIDE = int(last_stride)
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.HEADS.POOL = "avg"
    cfg.MODEL.HEADS.DROPOUT = 0.5
    return cfg


def target_state_dict(cfg, num_classes: int) -> dict[str, Tensor]:
    """State dict of ``build_model(cfg, num_classes)`` built on the ``meta`` device: the key
    names, order, shapes and dtypes the converted dict must have (no memory is allocated)."""
    from ...modeling import build_model

    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.BACKBONE.PRETRAIN = False
    with torch.device("meta"):
        model = build_model(cfg, num_classes)
    return model.state_dict()


# --------------------------------------------------------------------------- key mapping
class _Mapper:
    """Collects ``official key -> our key`` assignments and drops for one official file."""

    def __init__(self, source: str, sd: Mapping[str, Tensor], ours_prefix: str):
        self.source, self.sd, self.prefix = source, sd, ours_prefix
        self.assign: dict[str, str] = {}  # official -> ours
        self.dropped: dict[str, str] = {}  # official -> reason

    def map(self, key: str, ours: str) -> None:
        self.assign[key] = self.prefix + ours

    def drop(self, key: str, reason: str) -> None:
        self.dropped[key] = reason

    def map_block(self, leaves: Mapping[str, str], ours: str) -> None:
        """An official ``Conv2dBlock`` (``{leaf: key}``: conv, optional LayerNorm / AdaIN)."""
        for leaf, key in leaves.items():
            if leaf in _CONV_BLOCK_LEAVES:
                self.map(key, f"{ours}.{leaf}")
            elif leaf in _ADAIN_BUFFERS:
                self.drop(key, REASON_ADAIN)
            # anything else stays unassigned and is reported as unrecognised

    def map_resblock(self, leaves: Mapping[str, str], ours: str) -> None:
        """One official ``ResBlock`` (``model.<k>.<conv block>``, optional ``nonloc.``) ->
        our ``ResBlock`` (``conv<k+1>``)."""
        convs: dict[int, dict[str, str]] = {}
        for leaf, key in leaves.items():
            if leaf.startswith("nonloc."):
                self.drop(key, REASON_NONLOCAL)
                continue
            m = re.fullmatch(r"model\.(\d+)\.(.+)", leaf)
            if m:
                convs.setdefault(int(m.group(1)), {})[m.group(2)] = key
        for k, sub in sorted(convs.items()):
            self.map_block(sub, f"{ours}.conv{k + 1}")

    def drop_all(self, leaves: Mapping[str, str], reason: str) -> None:
        for key in leaves.values():
            self.drop(key, reason)

    def unassigned(self) -> list[str]:
        return [k for k in self.sd if k not in self.assign and k not in self.dropped]


def _children(sd: Mapping[str, Tensor], prefix: str) -> list[tuple[int, dict[str, str]]]:
    """Children of the ``nn.Sequential`` at ``prefix`` that hold tensors, in layer order:
    ``[(index, {leaf: full key})]``."""
    groups: dict[int, dict[str, str]] = {}
    for key in sd:
        if key.startswith(prefix):
            idx, dot, leaf = key[len(prefix) :].partition(".")
            if idx.isdigit() and dot:
                groups.setdefault(int(idx), {})[leaf] = key
    return sorted(groups.items())


def _kind(leaves: Mapping[str, str]) -> str:
    """Which official layer a Sequential child is, from the names of its tensors."""
    names = set(leaves)
    if any(n.startswith("query_conv.") for n in names):
        return "nonlocal"
    if all(re.match(r"model\.\d+\.(model\.\d+|nonloc)\.", n) for n in names):
        return "resblocks"
    if all(re.match(r"(model\.\d+|nonloc)\.", n) for n in names):
        return "resblock"
    if any(n.startswith("fuse.") for n in names):
        return "aspp"
    if names <= _CONV_BLOCK_LEAVES | _ADAIN_BUFFERS and "conv.weight" in names:
        return "ln_conv" if "norm.gamma" in names else "conv"
    if names <= {"weight", "bias"}:
        return "conv2d"
    return "unknown"


def _in_order(kinds: list[str], order: list[str]) -> bool:
    """``kinds`` (non-local blocks aside) are all in ``order`` and appear in that order."""
    core = [k for k in kinds if k != "nonlocal"]
    return all(k in order for k in core) and core == sorted(core, key=order.index)


def _layout_error(source: str, prefix: str, kinds: list[str], expected: str) -> ValueError:
    return ValueError(
        f"official {source} '{prefix}*' has layers {kinds}, expected {expected}; this is not "
        "the layout of NVlabs/DG-Net's configs/latest.yaml (gen dec: basic, n_downsample 2)"
    )


def _map_resblocks(m: _Mapper, leaves: Mapping[str, str], ours: str) -> None:
    """Official ``ResBlocks`` (``model.<j>.<ResBlock>``) -> our ``ResBlocks`` (``blocks.<j>``)."""
    blocks: dict[int, dict[str, str]] = {}
    for leaf, key in leaves.items():
        j, _, rest = leaf[len("model.") :].partition(".")
        blocks.setdefault(int(j), {})[rest] = key
    for j, sub in sorted(blocks.items()):
        m.map_resblock(sub, f"{ours}.blocks.{j}")


def _map_aspp(m: _Mapper, leaves: Mapping[str, str], ours: str) -> None:
    """Official ASPP (``conv1`` | ``conv6.<i>`` | ``conv12.<i>`` | ``conv18.<i>`` | ``fuse``,
    ordered by the number in the name) -> our ``branches.<n>`` and ``fuse``."""
    branch_names = sorted(
        {leaf.split(".")[0] for leaf in leaves if re.match(r"conv\d+\.", leaf)},
        key=lambda s: int(s[4:]),
    )
    index = {name: i for i, name in enumerate(branch_names)}
    for leaf, key in leaves.items():
        head, _, rest = leaf.partition(".")
        if head == "fuse" and rest in _CONV_BLOCK_LEAVES:
            m.map(key, f"{ours}.fuse.{rest}")
        elif head in index:
            if re.match(r"\d+\.", rest):  # a Sequential branch: 1x1 conv, dilated 3x3 conv
                i, _, block_leaf = rest.partition(".")
                if block_leaf in _CONV_BLOCK_LEAVES:
                    m.map(key, f"{ours}.branches.{index[head]}.{i}.{block_leaf}")
            elif rest in _CONV_BLOCK_LEAVES:
                m.map(key, f"{ours}.branches.{index[head]}.{rest}")


def _map_gen(sd: Mapping[str, Tensor]) -> _Mapper:
    m = _Mapper("gen", sd, "gen.")
    # Es: conv blocks, ResBlocks, (non-local), ASPP
    children = _children(sd, "enc_content.model.")
    kinds = [_kind(leaves) for _, leaves in children]
    n_conv = 0
    for (_, leaves), kind in zip(children, kinds):
        if kind == "conv":
            m.map_block(leaves, f"encoder.body.{n_conv}")
            n_conv += 1
        elif kind == "resblocks":
            _map_resblocks(m, leaves, f"encoder.body.{n_conv}")
        elif kind == "aspp":
            _map_aspp(m, leaves, "encoder.aspp")
        elif kind == "nonlocal":
            m.drop_all(leaves, REASON_NONLOCAL)
        else:
            raise _layout_error("gen", "enc_content.model.", kinds, "conv blocks, ResBlocks, ASPP")
    if not _in_order(kinds, ["conv", "resblocks", "aspp"]):
        raise _layout_error("gen", "enc_content.model.", kinds, "conv blocks, ResBlocks, ASPP")

    # G: (dropout), ResBlocks with AdaIN, (non-local), [upsample, conv + LayerNorm] x n,
    # conv blocks
    children = _children(sd, "dec.model.")
    kinds = [_kind(leaves) for _, leaves in children]
    n_up = n_out = 0
    for (_, leaves), kind in zip(children, kinds):
        if kind == "resblocks":
            _map_resblocks(m, leaves, "decoder.res")
        elif kind == "ln_conv":
            m.map_block(leaves, f"decoder.up.{2 * n_up + 1}")
            n_up += 1
        elif kind == "conv":
            m.map_block(leaves, f"decoder.out.{n_out}")
            n_out += 1
        elif kind == "nonlocal":
            m.drop_all(leaves, REASON_NONLOCAL)
        else:
            raise _layout_error("gen", "dec.model.", kinds, "ResBlocks, LayerNorm convs, convs")
    if not _in_order(kinds, ["resblocks", "ln_conv", "conv"]):
        raise _layout_error("gen", "dec.model.", kinds, "ResBlocks, LayerNorm convs, convs")

    # AdaIN MLPs: mlp_w<k>.model.<i>.fc.* -> mlp_w.<k-1>.net.<2i>.* (LReLU between Linears)
    for key in sd:
        mm = re.fullmatch(r"mlp_([wb])(\d+)\.model\.(\d+)\.fc\.(weight|bias)", key)
        if mm:
            wb, k, i, leaf = mm.groups()
            m.map(key, f"mlp_{wb}.{int(k) - 1}.net.{2 * int(i)}.{leaf}")
    return m


def _map_dis(sd: Mapping[str, Tensor]) -> _Mapper:
    m = _Mapper("dis", sd, "dis.")
    scales = sorted({int(k.split(".")[1]) for k in sd if re.match(r"cnns\.\d+\.", k)})
    for s in scales:
        prefix = f"cnns.{s}."
        children = _children(sd, prefix)
        kinds = [_kind(leaves) for _, leaves in children]
        n_conv = n_res = 0
        if not _in_order(kinds, ["conv", "resblock", "conv2d"]) or kinds[-1:] != ["conv2d"]:
            raise _layout_error("dis", prefix, kinds, "conv blocks, ResBlocks, final conv")
        for (_, leaves), kind in zip(children, kinds):
            if kind == "conv":
                m.map_block(leaves, f"scales.{s}.{n_conv}")
                n_conv += 1
            elif kind == "resblock":
                m.map_resblock(leaves, f"scales.{s}.{n_conv}.blocks.{n_res}")
                n_res += 1
            elif kind == "nonlocal":
                m.drop_all(leaves, REASON_NONLOCAL)
            elif kind == "conv2d":  # ours: [conv blocks, ResBlocks (even if empty), conv]
                for leaf, key in leaves.items():
                    m.map(key, f"scales.{s}.{n_conv + 1}.{leaf}")
            else:
                raise _layout_error("dis", prefix, kinds, "conv blocks, ResBlocks, final conv")
    return m


def _map_reid(sd: Mapping[str, Tensor], source: str, heads: Mapping[str, str], prefix: str):
    """``ft_netAB`` / ``ft_net``: ``model.*`` (torchvision ResNet-50) -> ``backbone.*``;
    ClassBlock ``add_block.{0,1}`` -> ``bottleneck.{0,1}``, ``classifier.0`` -> ``classifier``."""
    m = _Mapper(source, sd, prefix)
    for key in sd:
        if key.startswith("model.fc."):
            m.drop(key, REASON_FC)
        elif key.startswith("model."):
            m.map(key, "backbone." + key[len("model.") :])
        else:
            head, _, leaf = key.partition(".")
            if head not in heads:
                continue
            for official, ours in _CLASSBLOCK_LEAVES.items():
                if leaf.startswith(official):
                    m.map(key, f"{heads[head]}.{ours}{leaf[len(official) :]}")
            if leaf.startswith("classifier.0."):
                m.map(key, f"{heads[head]}.classifier.{leaf[len('classifier.0.') :]}")
    return m


# --------------------------------------------------------------------------- assembly
def _assemble(
    mappers: list[_Mapper], target: Mapping[str, Tensor], what: str
) -> tuple[dict[str, Tensor], ConversionReport]:
    report = ConversionReport()
    values: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for m in mappers:
        unknown = m.unassigned()
        if unknown:
            raise ValueError(
                f"cannot map {len(unknown)} key(s) of the official {m.source} state dict, e.g. "
                f"{unknown[:6]}; is it the {m.source} file of an NVlabs/DG-Net model trained with "
                "configs/latest.yaml (or a ft_net teacher of Person_reID_baseline_pytorch)?"
            )
        for key, ours in m.assign.items():
            tensor = m.sd[key]
            if ours not in target:
                raise ValueError(
                    f"official {m.source} key '{key}' {tuple(tensor.shape)} maps to '{ours}', "
                    f"which the dgnet_plugin {what} does not have; the config does not describe "
                    "the official architecture (check MODEL.GEN / MODEL.DIS / MODEL.HEADS)"
                )
            expected = target[ours]
            if tuple(tensor.shape) != tuple(expected.shape):
                raise ValueError(
                    f"shape mismatch: official {m.source} '{key}' is {tuple(tensor.shape)} but "
                    f"dgnet_plugin '{ours}' is {tuple(expected.shape)}; the config does not "
                    "match the official model (identities, MODEL.GEN / MODEL.DIS sizes?)"
                )
            if ours in values:
                raise ValueError(
                    f"official {m.source} keys '{origin[ours]}' and '{key}' both map to '{ours}'"
                )
            if tensor.dtype != expected.dtype and tensor.is_floating_point():
                tensor = tensor.to(expected.dtype)
            values[ours] = tensor
            origin[ours] = key
            report.mapped.append((m.source, key, ours))
        report.dropped += [(m.source, k, r) for k, r in m.dropped.items()]

    out: dict[str, Tensor] = {}
    missing = []
    for ours, expected in target.items():
        if ours in values:
            out[ours] = values[ours]
        elif ours.endswith("num_batches_tracked"):
            out[ours] = torch.zeros((), dtype=expected.dtype)
            report.filled.append((ours, REASON_NBT))
        else:
            missing.append(f"{ours} {tuple(expected.shape)}")
    if missing:
        raise ValueError(
            f"the dgnet_plugin {what} needs {len(missing)} tensor(s) the official files lack, "
            f"e.g. {missing[:6]}; pass all of gen / id / dis of the same snapshot, and a config "
            "that describes the official architecture"
        )
    return out, report


def convert_official_dgnet(
    gen_sd, id_sd, dis_sd, cfg=None, num_classes: int | None = None
) -> tuple[dict[str, Tensor], ConversionReport]:
    """Official DG-Net ``gen`` / ``id`` / ``dis`` state dicts (``{'a': sd}`` or bare) ->
    ``DGNet.state_dict()`` of dgnet_plugin (keys ``reid.*``, ``gen.*``, ``dis.*``).

    Args:
        cfg: the dgnet_plugin config to convert to (default: :func:`default_dgnet_cfg`, the
            official architecture); only the model shape matters.
        num_classes: identities (default: rows of the official ``classifier1``).

    Returns ``(state_dict, report)``; the state dict loads into ``DGNet.from_config(cfg,
    num_classes)`` with ``strict=True``. Raises ``ValueError`` naming the keys and shapes on
    any mismatch.
    """
    gen_sd = unwrap_official_state_dict(gen_sd, "gen")
    id_sd = unwrap_official_state_dict(id_sd, "id")
    dis_sd = unwrap_official_state_dict(dis_sd, "dis")
    found = infer_num_classes(id_sd, "id")
    if num_classes is not None and int(num_classes) != found:
        raise ValueError(
            f"num_classes={num_classes} but the official id classifier1 has {found} identities"
        )
    cfg = cfg if cfg is not None else default_dgnet_cfg()
    if cfg.MODEL.META_ARCHITECTURE != "DGNet":
        raise ValueError(
            f"convert_official_dgnet needs a DGNet config, got MODEL.META_ARCHITECTURE "
            f"'{cfg.MODEL.META_ARCHITECTURE}'"
        )
    target = target_state_dict(cfg, found)
    mappers = [
        _map_reid(id_sd, "id", _ID_HEADS, "reid."),
        _map_gen(gen_sd),
        _map_dis(dis_sd),
    ]
    return _assemble(mappers, target, "DGNet")


def convert_official_teacher(
    sd, cfg=None, num_classes: int | None = None
) -> tuple[dict[str, Tensor], ConversionReport]:
    """Official teacher ``net_last.pth`` (``ft_net`` of Person_reID_baseline_pytorch) ->
    ``IDEBaseline.state_dict()`` (keys ``backbone.*``, ``classifier.*``).

    ``cfg`` defaults to :func:`official_teacher_cfg` (ResNet-50, avg pooling, stride 2; the
    stride does not change any shape). Returns ``(state_dict, report)``.
    """
    sd = unwrap_official_state_dict(sd, "teacher")
    found = infer_num_classes(sd, "teacher")
    if num_classes is not None and int(num_classes) != found:
        raise ValueError(
            f"num_classes={num_classes} but the official teacher classifier has {found} rows"
        )
    cfg = cfg if cfg is not None else official_teacher_cfg()
    target = target_state_dict(cfg, found)
    mapper = _map_reid(sd, "teacher", {"classifier": "classifier"}, "")
    return _assemble([mapper], target, cfg.MODEL.META_ARCHITECTURE)
