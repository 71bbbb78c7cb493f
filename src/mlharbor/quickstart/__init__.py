"""The closed-loop quickstart on the embedded default."""
