"""CycleGAN's history of generated images (Shrivastava et al. 2017, section 2.3; Zhu et al.
2017, section 4): the discriminator is shown a mix of the newest fakes and older ones."""

from __future__ import annotations

import torch


class ImagePool:
    """A buffer of up to ``size`` generated images (CycleGAN's ``ImagePool``, default 50).

    :meth:`query` takes a batch ``(N, C, H, W)`` and returns a batch of the same shape, image
    by image: while the pool is not full the image is stored and returned; once full, with
    probability 1/2 it returns a uniformly chosen stored image and stores the new one in its
    place, else it returns the new image. ``size=0`` returns the batch itself. Images are
    stored detached. Draws come from ``generator`` (a ``torch.Generator``; default torch's
    global one); :meth:`state_dict` / :meth:`load_state_dict` keep a resumed run's pool.

    Kept with the losses because it only changes what the discriminator's loss sees.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        if size < 0:
            raise ValueError(f"ImagePool size must be >= 0, got {size}")
        self.size, self.generator = size, generator
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, rng=None) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``. ``rng``: a NumPy ``RandomState`` to draw from
        instead of ``generator`` (SPGAN's ``ItemPool`` as ``train_spgan_demo.py`` runs it: one
        ``RandomState(0)`` made afresh every iteration and shared by both pools,
        ``GAN.POOL_RESEED``; ``rand() > 0.5`` swaps with slot ``randint(0, size)``)."""
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif (rng.rand() if rng is not None else self._rand()) > 0.5:
                k = int(rng.randint(0, self.size) if rng is not None else self._slot())
                out.append(self.images[k])
                self.images[k] = img
            else:
                out.append(img)
        return torch.stack(out)

    def _rand(self) -> float:
        return torch.rand((), generator=self.generator).item()

    def _slot(self) -> int:
        return int(torch.randint(self.size, (), generator=self.generator))

    def state_dict(self) -> dict:
        return {"images": list(self.images)}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"])[: self.size]
