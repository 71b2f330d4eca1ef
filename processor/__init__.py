"""orderflow: the order service core shared by Lambda and Fargate: domain, use cases (orders,
processing, outbox), adapters, entrypoints and operator tools, one subpackage each."""
