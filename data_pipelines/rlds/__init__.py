"""RLDS/TFDS: the writer (numpy episodes -> TFDS dir) and the reader (TFDS dir -> numpy episodes)."""
