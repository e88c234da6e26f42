"""What the bundles' evaluators score with: the Ignite handler that writes unetseg's evaluation reports, and the
MONAI metric adapters of the EM membrane scores."""
