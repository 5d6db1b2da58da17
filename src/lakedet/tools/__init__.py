"""The data tools on top of the library: ingest, export, convert, inspect, show, predict, errors,
and the demo."""
