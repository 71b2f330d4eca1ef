"""HTTP glue for the Chalice entrypoint; business logic lives in `processor.services`."""
