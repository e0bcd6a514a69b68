"""Tests of the translation benchmark."""
