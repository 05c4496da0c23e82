"""What imageprep does, one function per command: prepare, push, hotfix, list, show, delete, serve.

Each use case takes plain request values and the run's :class:`~imageprep.settings.Settings`,
reaches images only through a :class:`~.session.Session` (the one resolver from a location to an
image store), and returns a value for the caller to print. None of them reads the command line or
the environment, or prints.
"""
