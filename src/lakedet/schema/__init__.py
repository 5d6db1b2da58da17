"""lakedet.schema.columns."""
