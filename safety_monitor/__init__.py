"""safety-monitor: streaming safety-signal monitor for clinical trials (CTCAE grading, rules, alerts, incidence)."""

__version__ = "0.1.0"
