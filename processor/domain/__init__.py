"""The order model: statuses, the TRANSITIONS table, exact money, service errors. Pure: no I/O."""
