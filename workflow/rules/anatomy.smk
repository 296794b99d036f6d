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


# The same heart on the finer grid of simulate.eikonal_resolution_mm, where the
# reaction-eikonal mode solves its eikonal (the simulation grid samples its times).
rule anatomy_eikonal:
    input:
        mesh=anatomy_mesh_input,
    output:
        h5=f"{RESULTS}/anatomy/{{heart}}/eikonal/anatomy.h5",
        vtu=f"{RESULTS}/anatomy/{{heart}}/eikonal/anatomy.vtu",
    log:
        "logs/anatomy_eikonal/{heart}.log",
    benchmark:
        "benchmarks/anatomy_eikonal/{heart}.tsv"
    params:
        source=anatomy_source,
        settings=settings("anatomy"),
        resolution=_SIMULATE["eikonal_resolution_mm"],
        outdir=lambda wildcards: f"{anatomy_outdir(wildcards)}/eikonal",
    threads: 2
    resources:
        mem_mb=24000,
        runtime=120,
    conda:
        CONDA_ENV
    shell:
        "pipeline anatomy {params.source} --name {wildcards.heart} "
        "--resolution {params.resolution} --no-png "
        "--out {params.outdir} --settings {params.settings} --log {log}"
