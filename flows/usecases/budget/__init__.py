"""Annual budget consolidation: exact figures, immutable snapshots, reports."""
