"""transforms stage."""
