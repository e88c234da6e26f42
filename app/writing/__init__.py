"""writing stage."""
