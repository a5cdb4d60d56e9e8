"""Checkers: exact verdicts on steps and answers. Model text is never ``eval``'d or sympified in this process:
arithmetic is parsed with ``ast`` into exact rationals, and math-verify runs in a bounded-time worker process."""
