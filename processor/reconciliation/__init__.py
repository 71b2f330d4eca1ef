"""Our records against the payment provider's: the reconciler, and the safe repairs it
shares with the webhook."""
