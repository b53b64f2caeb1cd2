"""Evidence: every format is rendered from the run's journal alone."""
