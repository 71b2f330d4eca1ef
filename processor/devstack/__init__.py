"""Development only, never shipped: the local supervisor, emulators and the embedded database."""
