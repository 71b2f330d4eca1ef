"""Order processing use cases: the steps from PENDING to a final status, and the charge."""
