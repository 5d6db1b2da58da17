"""lakedet.evaluation.metrics."""
