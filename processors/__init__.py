"""Stream processors: call-state join, metrics and the query API (faust-streaming)."""
