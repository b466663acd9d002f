"""weit_rl: Kronecker weight templates for initializing SB3 policies of any size."""

__version__ = "0.1.0"


class UserError(Exception):
    """A problem with the user's input: the message names it and says how to fix it."""
