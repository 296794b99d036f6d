rule anatomy:
    input:
        mesh=anatomy_mesh_input,
    output:
        h5=f"{RESULTS}/anatomy/{{heart}}/anatomy.h5",
        vtu=f"{RESULTS}/anatomy/{{heart}}/anatomy.vtu",
        png=report(
            f"{RESULTS}/anatomy/{{heart}}/anatomy.png",
            caption="../report/anatomy.rst",
            category="1. Anatomy",
        ),
    log:
        "logs/anatomy/{heart}.log",
    benchmark:
        "benchmarks/anatomy/{heart}.tsv"
    params:
        source=anatomy_source,
        settings=settings("anatomy"),
        outdir=anatomy_outdir,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "pipeline anatomy {params.source} --name {wildcards.heart} "
        "--out {params.outdir} --settings {params.settings} --log {log}"
