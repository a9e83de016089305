"""The HTTP service: settings, API, jobs, voices, storage and metrics."""
