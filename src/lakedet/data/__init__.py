"""The samples layer: ``DeepLakeDetDataset`` (rows -> MMDetection samples), how rows are read
(``reader``, ``cache``, ``annotations``, ``masks``), the loading transforms that begin every
pipeline (``transforms``, ``pipeline``), and how rows are ordered and handed over (``sampler``,
``wrappers``, ``workers``, ``handover``, ``seeding``)."""
