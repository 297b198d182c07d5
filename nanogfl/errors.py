"""Errors that mean "the user's input is wrong": the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Missing file, bad config key, model/checkpoint mismatch, unreadable annotation file, ..."""
