"""The machine: configuration, the plan of one run, the shared state built from it, results, invariants."""
