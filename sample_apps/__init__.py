"""Runnable host applications built on airssys-plugins."""
