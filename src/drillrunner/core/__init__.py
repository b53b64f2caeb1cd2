"""What every part of drill shares: errors, units, waiting, paths, the action registry
and the verdict types."""
