"""orderflow: the order service core (domain, services, adapters) shared by Lambda and Fargate."""
