"""Referral programs: personal codes, links, qualification after the return window, fraud guards, review queue, funnel."""
