"""Lessons and memory: learning between fine-tunes (README "Lessons and memory")."""
