"""Protecting a catalogue: many files, resumable, in parallel.

    manifest.py   what was done: one JSON line per file event, in the output folder
    plan.py       which files to protect, which to skip (complete and identical), which are not ours
    worker.py     protect one file in a worker process (threads, surrogates built once per worker)
    backends.py   where the files run: this process, N local processes, or a Ray cluster
    run.py        the loop that ties them together, with one progress bar and a summary
"""
