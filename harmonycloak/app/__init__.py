"""`harmonycloak serve`: a local web page to protect music without the command line.

    cli.py           the `serve` command: binds 127.0.0.1 unless told otherwise, prints the address
    app_settings.py  the app's limits (upload size, queue length) and defaults
    server.py        the FastAPI app: the page and the JSON API it polls
    uploads.py       what is let in: safe file names, size-limited request bodies
    jobs.py          the queue: a worker thread, progress and time left, cancel, one folder per job
    protection.py    what a job does: `harmonycloak.protect` (as the CLI), A/B excerpts, the verdict
    static/          the page itself (HTML, JavaScript, CSS; nothing loaded from the internet)

Nothing here is imported by `import harmonycloak`; the server's packages come with the `app` extra.
"""
