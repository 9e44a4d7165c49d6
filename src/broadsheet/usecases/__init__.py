"""The use cases: what a command does, with typed options, telling what happens through a ``Reporter``.

The CLI (``broadsheet.faces.commands``) parses, makes the options, calls one of these and turns the result into
an exit code; ``send --due`` and tests call them directly. Nothing here prints, asks or reads argv.
"""
