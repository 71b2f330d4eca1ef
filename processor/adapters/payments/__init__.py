"""Payment providers behind one small interface (base.py): the simulator, Stripe."""
