"""Privacy mailbox bot: answers a company's privacy contact mailbox."""

__version__ = "0.1.0"
