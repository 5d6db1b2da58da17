"""Plain-text tables for results printed by the command line."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table", "per_class_tables"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Render rows as an aligned text table; floats get 3 decimals."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |", line]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    out.append(line)
    return "\n".join(out)


def per_class_tables(metric):
    """(title, headers, rows) for each per-class table a lakedet metric kept from its last run."""
    tables = getattr(metric, "last_tables", None) or {}
    for key, table in tables.items():
        if hasattr(table, "per_class"):  # COCO
            rows = [(r["name"], r["AP"], r["AP50"], r["AP75"], r["AP_s"], r["AP_m"], r["AP_l"]) for r in table.per_class]
            yield f"COCO {table.iou_type}, per class", ["class", "AP", "AP50", "AP75", "AP_s", "AP_m", "AP_l"], rows
        else:  # Pascal VOC, one table per IoU threshold
            rows = [(r["name"], r["gts"], r["dets"], r["AP"]) for r in table]
            yield f"Pascal VOC, IoU {key}, per class", ["class", "gts", "dets", "AP"], rows
