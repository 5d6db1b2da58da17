"""lakedet.source.open."""
