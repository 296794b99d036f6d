rule dataset:
    input:
        design=f"{RESULTS}/design/{{campaign}}.csv",
        shards=get_campaign_sims,
    output:
        h5=f"{RESULTS}/dataset/{{campaign}}.h5",
        summary=f"{RESULTS}/dataset/{{campaign}}.summary.json",
        figure=report(
            f"{RESULTS}/dataset/{{campaign}}.png",
            caption="../report/dataset.rst",
            category="4. Dataset",
        ),
    log:
        "logs/dataset/{campaign}.log",
    benchmark:
        "benchmarks/dataset/{campaign}.tsv"
    params:
        settings=dataset_settings,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        CONDA_ENV
    shell:
        "pipeline dataset --shards {input.shards} --design {input.design} "
        "--campaign {wildcards.campaign} --out {output.h5} --summary {output.summary} "
        "--figure {output.figure} --settings {params.settings} --log {log}"
