"""Attune tutor: CMT client, policy, dialogue, sessions, database."""
