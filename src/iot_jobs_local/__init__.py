"""iot-jobs-local: a local, wire-compatible stand-in for AWS IoT Jobs (Mosquitto + SQLite + HTTP)."""
