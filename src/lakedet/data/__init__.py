"""lakedet.data."""
