"""MIDI files: protect (read → cloak layers → optimiser → write), verify, train."""
