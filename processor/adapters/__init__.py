"""Everything that talks to the outside: AWS clients, SQS, notifications, payments, the emulator."""
