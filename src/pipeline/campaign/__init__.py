"""Campaigns and the dataset: sweep design, shard assembly with splits, import of the
authors' dataset (stage 5).

Modules: :mod:`~pipeline.campaign.design` (the sweep table and its shards),
:mod:`~pipeline.campaign.assemble` (shards -> dataset), :mod:`~pipeline.campaign.dataset`
(the dataset file: writer and integrity check), :mod:`~pipeline.campaign.splits`,
:mod:`~pipeline.campaign.summary`, :mod:`~pipeline.campaign.llnl` (the authors' ``.npy``
layout), :mod:`~pipeline.campaign.cli`.
"""
