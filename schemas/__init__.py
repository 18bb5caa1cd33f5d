"""Typed models of every payload and the published contract of every topic."""
