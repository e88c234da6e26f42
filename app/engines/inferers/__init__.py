"""Inferers the bundles' evaluators and ``unetseg infer`` run: overlap-tile (mirrored borders), mirroring
test-time augmentation, window skipping outside the body, window progress, and finding an inferer inside another."""
