"""The offline-augmentation family: re-ID trained on real images plus images a generative
model wrote beforehand (generate, then train). Shared by CamStyle, SPGAN, PTGAN, LSRO and
PN-GAN, imported by those five method packages only (never by the core or another method).

``config`` (the ``GAN``, ``GENERATED``, ``DOMAINS``, ``MASKS`` keys and the translator
stage's derived config), ``cyclegan`` (the CycleGAN trainer and its translators) and
``cyclegan_model`` (the ``CycleGAN`` meta-architecture), ``engine`` (the re-ID trainer on
real + generated images and the pipeline's stages: translator training, generation, the
real-only baseline, the domain split), ``data`` (the generated items in the real label
space, the mixing loader), ``label_assignment`` (the per-sample label rules: hard, LSR,
LSRO, teacher), ``masks`` (foreground masks for PTGAN and PN-GAN), ``subsets`` (identity
ranges cut out of a Market-layout folder).
"""

from . import cyclegan_model  # noqa: F401 (registers the CycleGAN meta-architecture)
