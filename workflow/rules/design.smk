rule design:
    output:
        csv=f"{RESULTS}/design/{{campaign}}/{{shard}}.csv",
    log:
        "logs/design/{campaign}/{shard}.log",
    benchmark:
        "benchmarks/design/{campaign}/{shard}.tsv"
    params:
        settings=design_shard_settings,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "pipeline design --campaign {wildcards.campaign} --shard {wildcards.shard} "
        "--out {output.csv} --settings {params.settings} --log {log}"


rule design_table:
    output:
        csv=report(
            f"{RESULTS}/design/{{campaign}}.csv",
            caption="../report/design.rst",
            category="2. Design",
        ),
    log:
        "logs/design_table/{campaign}.log",
    benchmark:
        "benchmarks/design_table/{campaign}.tsv"
    params:
        settings=design_table_settings,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    priority: 50
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "pipeline design --campaign {wildcards.campaign} --out {output.csv} "
        "--settings {params.settings} --log {log}"
