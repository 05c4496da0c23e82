"""The command line: cliff commands that parse options into settings and call the library."""
