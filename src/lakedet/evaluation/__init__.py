"""The metrics layer: COCO and Pascal VOC metrics whose ground truth comes from the evaluated rows
(``metrics``), COCO's matching of predictions to ground truth (``matching``), plots and tables."""
