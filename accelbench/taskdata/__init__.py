"""Reading user data as it comes: file shapes (headerless CSV/TSV, JSON lines, gzip), text columns and
pairs, label mapping, and the checks that run before any work."""
