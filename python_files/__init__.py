"""Reusable code of the course: every notebook imports from here."""
