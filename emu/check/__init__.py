"""Layer 5: checks that drive a machine (KUnit suites, sweeps over stop points)."""
