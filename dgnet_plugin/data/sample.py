"""The sample convention: what one training or test item is, in one place.

A dataset of the package returns a ``dict`` per item and the loader batches it field by
field. Every sample has

- ``img``: the image, a normalised float tensor ``(C, H, W)`` (``C`` = 3 for RGB, 1 for
  infrared / gray, see ``INPUT.FORMAT``), or a PIL image before the transform;
- ``pid``: the identity, an ``int`` (training: relabelled to ``0..N-1``).

Optional fields, present only when the data has them (a method asks for what it needs):

- ``camid`` (``int``, 0-based camera), ``impath`` (``str``, the file read), ``dsetid``
  (``int``, torchreid's dataset index);
- ``modality``: ``"visible"`` or ``"infrared"`` (:data:`MODALITIES`, the names of the
  SYSU-MM01 ``labels.csv``), for cross-modality re-ID;
- ``domain``: ``int`` or ``str``, the source dataset / style domain (domain translation);
- ``mask``: person mask ``(1, H, W)`` float in ``[0, 1]``, aligned with ``img``;
- ``pose``: pose heat maps ``(K, H, W)`` (e.g. K = 17 COCO keypoints), aligned with ``img``;
- ``generated``: ``bool``, ``True`` for an image written by a generator (LSRO, DG-Net's
  generated sets), so losses can weight real and generated images differently;
- ``pos`` (DG-Net): another image of the same identity, transformed like ``img``;
  ``img_erased`` / ``pos_erased``: randomly erased copies for the ID losses.

The spatial fields (:data:`SPATIAL_FIELDS`) must follow every flip, crop and resize of the
image: :class:`~dgnet_plugin.data.transforms.JointTransform` applies one random draw to all of
them. The training item lists torchreid produces stay tuples ``(path, pid, camid, dsetid)``;
the dict is what ``__getitem__`` returns.
"""

from __future__ import annotations

IMG, POS, PID, CAMID, IMPATH = "img", "pos", "pid", "camid", "impath"
MODALITY, DOMAIN, MASK, POSE, GENERATED = "modality", "domain", "mask", "pose", "generated"

VISIBLE, INFRARED = "visible", "infrared"
#: the values of the ``modality`` field
MODALITIES = (VISIBLE, INFRARED)
#: fields that are images aligned with ``img`` (transformed jointly with it)
SPATIAL_FIELDS = (MASK, POSE)
