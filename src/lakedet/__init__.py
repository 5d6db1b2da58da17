"""lakedet."""
