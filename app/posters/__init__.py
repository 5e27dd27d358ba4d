"""Printable A4 QR posters of each candidate's public survey link (HTML, SVG, PDF)."""
