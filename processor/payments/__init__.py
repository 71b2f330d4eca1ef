"""Payment use cases beyond authorisation: voids on cancel, refunds after capture."""
