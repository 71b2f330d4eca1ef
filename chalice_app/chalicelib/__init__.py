"""HTTP glue for the Chalice entrypoint; the use cases live in `processor.orders` and
`processor.processing`."""
