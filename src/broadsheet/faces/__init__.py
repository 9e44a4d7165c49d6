"""The faces: the command line, ``serve`` and ``preview``, turning argv and HTTP into use cases."""
