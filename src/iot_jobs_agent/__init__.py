"""``iot-jobs-agent``: a device that runs its own jobs (the seed's job executor as a program)."""
