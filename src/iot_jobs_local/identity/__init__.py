"""Identity: certificates and the local CA (``pki``), registering certificates made elsewhere
(``registration``), IoT policies and their versions, their attachment to certificates and thing
groups (``groups``: what identity is told of the registry), principals and their thing
attachments, their SQLite store, paging, and the errors they answer with (``errors``: one class
per AWS code, the one place that maps them to the wire).

May import: ``jobs`` (the registry's errors), ``store`` (the SQLite helper). Nothing above it:
the broker reads identity, identity never reads the broker.
"""
