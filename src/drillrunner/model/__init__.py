"""Scenario and drill files: pydantic models and a loader that reports file:line:col."""
