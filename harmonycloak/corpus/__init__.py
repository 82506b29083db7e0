"""Corpora of real music: the music21 corpus (Bach chorales, Palestrina, Monteverdi, the Essen
folk songs) and folders of the user's own MIDI files, as `Score`s and stacked piano-roll bars."""

from harmonycloak.corpus.cache import CACHE_VERSION, default_cache_dir
from harmonycloak.corpus.collections import COLLECTIONS, Collection, corpus_folder, list_sources
from harmonycloak.corpus.loading import Piece, list_midi_files, load_collection, load_midi_folder, stack_bars
from harmonycloak.corpus.voices import satb_tracks, tracks_by_range

__all__ = [
    "CACHE_VERSION",
    "COLLECTIONS",
    "Collection",
    "Piece",
    "corpus_folder",
    "default_cache_dir",
    "list_midi_files",
    "list_sources",
    "load_collection",
    "load_midi_folder",
    "satb_tracks",
    "stack_bars",
    "tracks_by_range",
]
