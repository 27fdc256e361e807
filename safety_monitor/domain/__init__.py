"""Pure clinical domain: values, messages, grading, rules, alerts and incidence; no I/O, no frameworks."""
