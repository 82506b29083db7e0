"""Files in and out: audio (audio.py, with formats, tags and atomic writes beside it) and MIDI."""
