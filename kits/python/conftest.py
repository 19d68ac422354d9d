"""Puts weir_kit on sys.path for the kit's own tests."""
