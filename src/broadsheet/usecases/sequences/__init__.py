"""Sequences: the steps ``send --due`` sends as they fall due (``steps``), a timeline and a status (``timeline``)."""
