"""Readers and batching: every byte of user input passes through here first."""
