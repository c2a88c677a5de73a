"""The broker: Mosquitto as a child process (``process``: its generated configuration, password
and ACL files), the policy-to-ACL compiler (``acl``), access reloads when identity changes
(``access``) and the broker watch (``watch``: who is connected, with which client id).

May import: ``identity`` (what each certificate may do) and ``mqtt`` (the service's own
connections, ``codec`` and ``connection``). The engine and the wire adapters never import it.
"""
