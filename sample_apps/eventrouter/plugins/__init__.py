"""The eventrouter sample's plugins: guest sources (one directory each) and ``triage``."""
