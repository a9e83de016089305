"""The HTTP API: one router per resource, shared schemas, one error translation."""
