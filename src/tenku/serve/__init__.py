"""Serving: the OpenAI-compatible video API, the job store, worker processes and the web page (``tenku serve``)."""
