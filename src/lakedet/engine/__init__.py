"""lakedet.engine."""
