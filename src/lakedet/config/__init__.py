"""The config layer: every ``deeplake_*`` key (``keys``), the one walker over a run's dataset
configs (``walk``), secrets in configs (``secrets``) and the seed's 2.x-style configs translated to
MMDetection 3 (``translate``). Nothing here opens data."""

from .translate import is_2x_config, merge_options, translate_config

__all__ = ["is_2x_config", "merge_options", "translate_config"]
