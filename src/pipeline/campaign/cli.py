"""Subcommands of the campaign stage: ``design``, ``dataset``, ``import-llnl``."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pipeline.cliutil import add_common, add_settings, load_settings

log = logging.getLogger(__name__)


def _split_settings(args: argparse.Namespace, campaign: str) -> tuple[dict[str, Any], int, dict]:
    """(split settings, seed, resolved campaigns) for ``campaign``; schema defaults if absent."""
    full = load_settings(args, overrides={"campaigns": {campaign: {}}})
    return full["campaigns"][campaign]["split"], int(full["seed"]), full["campaigns"]


def _design(args: argparse.Namespace) -> int:
    from pipeline.campaign import design

    config = load_settings(args)
    if args.shard:
        table = design.shard_table(config, args.campaign, args.shard)
    else:
        table = design.design_table(config, args.campaign)
    design.write_design(table, args.out)
    counts = table.groupby(["anatomy", "pattern"]).size().unstack(fill_value=0)
    log.info("design %s%s: %d simulations -> %s\n%s", args.campaign,
             f" shard {args.shard}" if args.shard else "", len(table), args.out,
             counts.to_string())
    if args.shards_dir:
        for name in design.shard_names(config, args.campaign):
            design.write_design(design.shard_table(config, args.campaign, name),
                                f"{args.shards_dir}/{name}.csv")
        log.info("wrote %d shard tables under %s", len(design.shard_names(config, args.campaign)),
                 args.shards_dir)
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from pipeline.campaign.assemble import assemble
    from pipeline.campaign.design import read_design
    from pipeline.campaign.summary import write_summary

    split_cfg, seed, campaigns = _split_settings(args, args.campaign)
    design_table = read_design(args.design) if args.design else None
    assemble(args.shards, args.out, split_cfg=split_cfg, seed=seed, campaign=args.campaign,
             design=design_table, design_path=str(args.design),
             config={"seed": seed, "campaigns": campaigns})
    write_summary(args.out, args.summary, args.figure)
    return 0


def _import_llnl(args: argparse.Namespace) -> int:
    from pipeline.campaign.llnl import import_llnl
    from pipeline.campaign.summary import write_summary

    split_cfg, seed, _ = _split_settings(args, "llnl")
    import_llnl(args.dir, args.out, split_cfg=split_cfg, seed=seed, n_samples=args.samples,
                config={"seed": seed, "split": split_cfg})
    write_summary(args.out, args.summary, args.figure)
    return 0


def register(sub: Any, bench: Any) -> None:
    """Add ``design``, ``dataset`` and ``import-llnl`` to the ``pipeline`` command."""
    p = sub.add_parser("design", help="write a campaign's sweep design (CSV) before simulating")
    p.add_argument("--campaign", required=True, help="campaign name (config key campaigns.NAME)")
    p.add_argument("--shard", default=None, help="write only this shard's rows ({heart}-{NNN})")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--shards-dir", default=None,
                   help="also write every shard's table as DIR/{shard}.csv")
    add_settings(p, "JSON/YAML (or @FILE) with seed, anatomy and campaigns")
    add_common(p)
    p.set_defaults(func=_design)

    p = sub.add_parser("dataset", help="assemble shard files into a dataset with splits")
    p.add_argument("--shards", nargs="+", required=True, metavar="H5", help="shard files")
    p.add_argument("--out", required=True, metavar="H5", help="dataset file to write")
    p.add_argument("--campaign", default="dataset",
                   help="campaign name (its split settings and the split's random key)")
    p.add_argument("--design", default=None, metavar="CSV",
                   help="design table the shards must match exactly")
    p.add_argument("--summary", default=None, metavar="JSON", help="write the summary here")
    p.add_argument("--figure", default=None, metavar="PNG",
                   help="write the parameter/label figure here")
    add_settings(p, "JSON/YAML (or @FILE) with seed and campaigns")
    add_common(p)
    p.set_defaults(func=_dataset)

    p = sub.add_parser("import-llnl", help="convert the authors' pECGData/VmData .npy folders")
    p.add_argument("dir", help="top folder of the authors' dataset")
    p.add_argument("--out", required=True, metavar="H5", help="dataset file to write")
    p.add_argument("--samples", type=int, default=500, help="time samples per file (1 ms each)")
    p.add_argument("--summary", default=None, metavar="JSON", help="write the summary here")
    p.add_argument("--figure", default=None, metavar="PNG",
                   help="write the parameter/label figure here")
    add_settings(p, "JSON/YAML (or @FILE): seed and campaigns.llnl.split")
    add_common(p)
    p.set_defaults(func=_import_llnl)
