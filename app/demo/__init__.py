"""The embedded demo: real cases and the end-to-end run of `unetseg demo`."""
