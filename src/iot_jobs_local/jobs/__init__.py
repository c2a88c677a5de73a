"""The jobs domain: pure data and rules, no I/O, no clock reads (callers pass ``now``)."""
