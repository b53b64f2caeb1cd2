"""drillrunner: chaos and disaster-recovery drills with evidence an auditor can verify."""

__version__ = "0.1.0"
