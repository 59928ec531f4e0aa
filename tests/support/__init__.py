"""Helpers shared by the test suite: load client, test-server builds and process handling."""
