"""The backbone error, in a module of its own so that torch-free code (fetching, resolving
backbone names) can raise it without importing torch and transformers."""


class BackboneError(ValueError):
    """A backbone folder, size or input that cannot be used; the message says what to fix."""
