"""Audio files: protect (read → psychoacoustic bounds → cloak → optimiser → write), verify, train."""
