"""Traces: the versioned JSON Lines format (events), its streaming reader and its recorder."""
