"""Doors into the use cases: the queue consumer (Lambda and worker), worker, local system."""
