"""The runner layer: the hooks every run over Deep Lake data gets (``hooks``), what lakedet's own
entry points add (``runner``: ``build_detector``, ``train_detector``), checkpoints, lineage and
launching distributed runs."""
