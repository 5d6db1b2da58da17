"""lakedet.tools."""
