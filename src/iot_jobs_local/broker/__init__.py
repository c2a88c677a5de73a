"""The broker: Mosquitto as a child process (``process``: its generated configuration and password
files; ``limits``: open files for a fleet's connections), the CONNECT plugin (``connect_auth.c``,
``plugin``, ``gate``) which also holds the device ACL (``acl_feed``), the policy-to-ACL compiler
(``acl``), per-certificate access updates when identity changes (``access``) and the broker watch
(``watch``: who is connected, with which client id).

May import: ``identity`` (what each certificate may do) and ``mqtt`` (the service's own
connections, ``codec`` and ``connection``). The engine and the wire adapters never import it.
"""
