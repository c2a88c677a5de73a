"""The boto3-compatible REST-JSON HTTP API (``iot`` control plane, ``iot-jobs-data`` device plane)."""
