"""The device wire over MQTT: the MQTT 3.1.1 codec (``codec``), the service's own connections to the
broker (``connection``, ``link``), the device API (``device_api``: topic to operation to engine to
reply and events) and the payloads only MQTT publishes (``wire``: notify events, registry events).

May import: ``engine``, ``wire``, ``jobs``. Nothing here knows Mosquitto's files or processes.
"""
