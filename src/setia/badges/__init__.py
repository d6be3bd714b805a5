"""Badges and challenges: definitions, progress per member from events, completion rewards, leaderboards."""
