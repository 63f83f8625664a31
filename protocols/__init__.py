"""Protocol runners (``python -m protocols.map``, ...) and the metrics they share."""
