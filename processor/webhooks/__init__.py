"""Payment-provider webhooks: signed events in, our records brought to what the provider says."""
