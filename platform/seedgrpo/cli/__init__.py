"""Command-line entry points: ``seedgrpo-sweep`` (and, as they land, train, eval, report)."""
