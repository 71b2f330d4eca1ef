"""One module per fault. Each scenario takes a running `Stack`, injects its fault, repairs it
and returns an `Outcome`, whose violations say which guarantee did not hold."""
