"""``iot-jobs-fleet``: many simulated devices, each its own mutual-TLS MQTT connection, running jobs."""
