rule cells:
    output:
        h5=f"{RESULTS}/cells/initial_states.h5",
    log:
        "logs/cells/cells.log",
    benchmark:
        "benchmarks/cells/cells.tsv"
    params:
        settings=settings("cells"),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        CONDA_ENV
    shell:
        "pipeline cells --out {output.h5} $PIPELINE_CELLS_RUN_ARGS --settings {params.settings} "
        "--log {log}"
