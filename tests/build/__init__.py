"""Build tests: boot stub encodings, image layout, cache."""
