"""Helpers shared by the test suite: free ports, real registries, images pushed by skopeo."""
