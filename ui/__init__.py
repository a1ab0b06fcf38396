"""Attune web app (Gradio): student, teacher and demo views."""
