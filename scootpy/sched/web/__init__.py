"""The scheduler's live status page (HTML at ``/``, data at ``/status.json``)."""
