"""Pulumi program for orderflow; kept out of a package named `pulumi` so the SDK is not shadowed."""
