"""Layer 1: errors, argument checks, the emulated CPU and guest RAM."""
