"""lakedet.config.translate."""
