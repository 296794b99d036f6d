rule calibrate:
    input:
        anatomy=f"{RESULTS}/anatomy/{{heart}}/anatomy.h5",
    output:
        json=f"{RESULTS}/calibration/{{campaign}}/{{heart}}.json",
    log:
        "logs/calibrate/{campaign}/{heart}.log",
    benchmark:
        "benchmarks/calibrate/{campaign}/{heart}.tsv"
    params:
        settings=calibrate_settings,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "pipeline calibrate --anatomy {input.anatomy} --campaign {wildcards.campaign} "
        "--out {output.json} --threads {threads} --settings {params.settings} --log {log}"


rule simulate:
    input:
        anatomy=get_shard_anatomy,
        cells=f"{RESULTS}/cells/initial_states.h5",
        params=f"{RESULTS}/design/{{campaign}}/{{shard}}.csv",
        calibration=get_shard_calibration,
        eikonal_anatomy=get_shard_eikonal_anatomy,
    output:
        h5=f"{RESULTS}/sims/{{campaign}}/{{shard}}.h5",
    log:
        "logs/simulate/{campaign}/{shard}.log",
    benchmark:
        "benchmarks/simulate/{campaign}/{shard}.tsv"
    params:
        settings=settings("simulate"),
        calibration=calibration_option,
        eikonal=eikonal_anatomy_option,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=0,
    conda:
        CONDA_ENV
    shell:
        "pipeline simulate --anatomy {input.anatomy} --cells {input.cells} "
        "--params {input.params} --out {output.h5} --threads {threads} {params.calibration} "
        "{params.eikonal} "
        "$PIPELINE_SIMULATE_RUN_ARGS --settings {params.settings} --log {log}"


rule simulate_figures:
    input:
        shard=f"{RESULTS}/sims/{{campaign}}/{{shard}}.h5",
        anatomy=get_shard_anatomy,
    output:
        ecg=report(
            f"{RESULTS}/sims/{{campaign}}/figures/{{shard}}/ecg12.png",
            caption="../report/simulate.rst",
            category="3. Simulations",
        ),
        activation=f"{RESULTS}/sims/{{campaign}}/figures/{{shard}}/activation3d.png",
        vm=f"{RESULTS}/sims/{{campaign}}/figures/{{shard}}/vm.png",
    log:
        "logs/simulate_figures/{campaign}/{shard}.log",
    benchmark:
        "benchmarks/simulate_figures/{campaign}/{shard}.tsv"
    params:
        outdir=shard_figures_dir,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        CONDA_ENV
    shell:
        "pipeline simulate-figures --shard {input.shard} --anatomy {input.anatomy} "
        "--index 0 --out {params.outdir} "
        "--log {log}"
