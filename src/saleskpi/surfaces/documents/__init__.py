"""Documents for people to keep: tables as PDF (fpdf2, DejaVu Sans for Cyrillic) and XLSX.

A ``Document`` is a title, a few lines saying what it covers, and tables of cells
(each with its raw value and its text as the reader's language writes it). The
scheduled digests attach one; the web pages (``?format=pdf``) and ``saleskpi report
pdf`` render their tables as one. It imports no other surface.
"""

from saleskpi.surfaces.documents.model import Cell, Column, Document, Row, Table

__all__ = ["Cell", "Column", "Document", "Row", "Table"]
