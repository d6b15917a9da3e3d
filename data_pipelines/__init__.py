"""Datasets in (RLDS/TFDS incl. the OXE registry, LeRobot v3, own logs via a key mapping) ->
standardize -> normalize -> chunk -> image resize/augment -> batches of ``vla.types.TrainingSample``;
plus the RLDS writer. Heavy libraries (tensorflow, torch, av) are imported lazily inside functions.

Entry points:

* ``data_pipelines.rlds.writer.write_rlds(episodes, out_dir, name, spec)`` -> TFDS directory
* ``data_pipelines.sources.open_dataset(path, name=None, mapping=None, split="train")`` ->
  ``StandardizedSource`` (``.spec``, ``.iter_episodes()`` of ``StandardEpisode``)
* ``data_pipelines.oxe.known_datasets()`` / ``get_entry(name)`` / ``summary(entry)``: the registered OXE datasets
  (published specs by real TFDS name); ``data_pipelines.oxe.mixtures.dataset_configs(name, data_dir)``: a named
  Octo/OpenVLA mixture's members with their published weights (``PipelineConfig(balance_weights=True)``)
* paths may be ``gs://``-style URLs (``data_pipelines.rlds.fs``, streamed through ``tf.io.gfile``)
* ``data_pipelines.stats.get_stats(source, NormConfig())``: cached norm stats
* ``data_pipelines.pipeline.Pipeline(PipelineConfig(datasets=(DatasetConfig(path, weight=..),), ...))``:
  iterable of ``TrainingSample``; ``.embodiments`` (specs with stats); ``state_dict()`` to resume
* ``data_pipelines.torch_data.VLAIterableDataset(cfg).dataloader(batch_size, num_workers)``:
  batches (lists of samples) for ``policy.collate``; ``PositionTracker`` for exact resume
"""
