"""Datasets in (RLDS/TFDS, LeRobot v3, own logs via a key mapping) -> standardize -> normalize ->
chunk -> image resize/augment -> batches of ``vla.types.TrainingSample``; plus the RLDS writer.

Entry points (heavy libraries are imported lazily inside them):

* ``data_pipelines.rlds.writer.write_rlds(episodes, out_dir, name, spec)`` -> TFDS directory
* ``data_pipelines.rlds.reader.RLDSSource(path, split)`` -> numpy episodes
"""
