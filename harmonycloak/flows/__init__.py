"""The flows a musician runs, each from file to file: protect, verify and train, for audio (`audio/`)
and for MIDI (`midi/`), side by side; `dispatch` picks the flow by the file's kind."""
