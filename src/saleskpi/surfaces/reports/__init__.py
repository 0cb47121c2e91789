"""Reports that go to people unasked: digests by e-mail and Telegram, on a schedule.

``digest.py`` words a digest (``views.digests``) in its reader's language and
attaches it as PDF and XLSX (``surfaces.documents``); ``send.py`` picks the
recipients and hands the notices to ``service.delivery``; ``jobs.py`` is the job
``saleskpi serve`` runs for the schedules of reports.yaml; ``pages.py`` renders
the data of a dashboard page as a PDF for ``saleskpi report pdf`` and the API.
"""
