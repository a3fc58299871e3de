"""Writes: every change to registries, tags, History and promotions goes through here."""
