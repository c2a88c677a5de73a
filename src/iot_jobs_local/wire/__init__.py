"""JSON shapes shared by both wires: the control-plane views of jobs, executions and templates
(``control``) and the device-plane views of executions (``executions``), field for field and in
AWS's key order. The HTTP API and the MQTT device API both build their answers from here.

May import: ``engine`` (its read models) and ``jobs``.
"""
