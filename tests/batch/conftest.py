"""The batch tests use the root conftest's ``toy_bundle`` and ``demo_data`` fixtures."""
