"""iot-jobs: an interactive console for the AWS IoT Jobs lifecycle (real AWS IoT or iot-jobs-local)."""
